/* AVX enablement: the firmware leaves CR4.OSXSAVE and XCR0 as they were at reset, so an
 * application that wants AVX sets them itself. Prints the [cpu] step lines. */
#include "uefi_internal.h"
#include "../platform.h"
#include "../out.h"

#define CPUID1_ECX_XSAVE (1u << 26)
#define CPUID1_ECX_AVX (1u << 28)
#define CR4_OSXSAVE (1ull << 18)
#define XCR0_X87 0x1u
#define XCR0_SSE 0x2u
#define XCR0_AVX 0x4u

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

static uint64_t read_cr4(void)
{
    uint64_t value;
    __asm__ volatile("mov %%cr4, %0" : "=r"(value));
    return value;
}

static void write_cr4(uint64_t value)
{
    __asm__ volatile("mov %0, %%cr4" : : "r"(value) : "memory");
}

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void xsetbv0(uint64_t value)
{
    __asm__ volatile("xsetbv" : : "a"((uint32_t)value), "d"((uint32_t)(value >> 32)), "c"(0)
                     : "memory");
}

int plat_enable_avx(void)
{
    uint32_t r[4];
    cpuid(0, 0, r);
    uint32_t max_leaf = r[0];
    cpuid(1, 0, r);
    uint32_t ecx1 = r[2];
    if (!(ecx1 & CPUID1_ECX_XSAVE))
        return 0; /* no XSAVE: no XCR0, so no AVX state; the core reports why */

    if (!(read_cr4() & CR4_OSXSAVE))
        write_cr4(read_cr4() | CR4_OSXSAVE);
    int osxsave = (read_cr4() & CR4_OSXSAVE) != 0;
    out_str("[cpu] step=cr4_osxsave");
    out_kv_u64("ok", (uint64_t)osxsave);
    out_end();
    if (!osxsave)
        return 0;

    /* XCR0 bits the processor supports (leaf 0xD, sub-leaf 0, EAX). */
    uint32_t supported = XCR0_X87 | XCR0_SSE;
    if (max_leaf >= 0xd) {
        cpuid(0xd, 0, r);
        supported = r[0];
    }
    uint64_t xcr0 = xgetbv0();
    uint64_t wanted = xcr0 | ((XCR0_X87 | XCR0_SSE | XCR0_AVX) & supported) | XCR0_X87;
    /* AVX state cannot be enabled without SSE state. */
    if ((wanted & XCR0_AVX) && !(wanted & XCR0_SSE))
        wanted &= ~(uint64_t)XCR0_AVX;
    if (wanted != xcr0)
        xsetbv0(wanted);
    xcr0 = xgetbv0();
    int avx_state = (xcr0 & (XCR0_SSE | XCR0_AVX)) == (XCR0_SSE | XCR0_AVX);
    out_str("[cpu] step=xcr0");
    out_kv_hex("xcr0", xcr0);
    out_kv_u64("avx_state", (uint64_t)avx_state);
    out_end();
    return avx_state && (ecx1 & CPUID1_ECX_AVX) != 0;
}

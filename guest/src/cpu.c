#include "cpu.h"
#include "out.h"

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
}

/* Leaf 0x40000000 is only meaningful with the hypervisor bit set (on bare metal it echoes
 * the highest basic leaf). The signature goes on a kv line, so anything but [A-Za-z0-9]
 * becomes '_' ("Microsoft Hv" -> Microsoft_Hv) and trailing NULs are dropped. */
static void hypervisor_detect(struct cpu_info *cpu)
{
    static const char tcg[] = "TCGTCGTCGTCG";
    uint32_t r[4];
    cpu->hv_vendor[0] = 0;
    cpu->tcg = 0;
    if (!cpu->hypervisor)
        return;
    cpuid(0x40000000u, 0, r);
    uint32_t sig[3] = {r[1], r[2], r[3]};   /* EBX, ECX, EDX */
    int len = 0, same = 1;
    for (int i = 0; i < 12; i++) {
        char ch = (char)(sig[i / 4] >> (8 * (i % 4)));
        same &= ch == tcg[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        cpu->hv_vendor[i] = ok ? ch : '_';
        if (ch)
            len = i + 1;
    }
    cpu->hv_vendor[len] = 0;
    cpu->tcg = same;
}

void cpu_detect(struct cpu_info *cpu)
{
    uint32_t r[4];
    cpuid(0, 0, r);
    uint32_t max_leaf = r[0];
    uint32_t name[3] = {r[1], r[3], r[2]};   /* EBX, EDX, ECX spell the vendor */
    for (int i = 0; i < 12; i++)
        cpu->vendor[i] = (char)(name[i / 4] >> (8 * (i % 4)));
    cpu->vendor[12] = 0;

    cpuid(1, 0, r);
    uint32_t base_family = (r[0] >> 8) & 0xf;
    uint32_t base_model = (r[0] >> 4) & 0xf;
    cpu->family = base_family;
    cpu->model = base_model;
    if (base_family == 0xf)
        cpu->family += (r[0] >> 20) & 0xff;
    if (base_family == 0x6 || base_family == 0xf)
        cpu->model += ((r[0] >> 16) & 0xf) << 4;
    cpu->sse2 = (r[3] >> 26) & 1;
    cpu->fma = (r[2] >> 12) & 1;
    cpu->xsave = (r[2] >> 26) & 1;
    cpu->osxsave = (r[2] >> 27) & 1;
    cpu->avx = (r[2] >> 28) & 1;
    cpu->hypervisor = (r[2] >> 31) & 1;
    cpu->avx2 = 0;
    if (max_leaf >= 7) {
        cpuid(7, 0, r);
        cpu->avx2 = (r[1] >> 5) & 1;
    }
    hypervisor_detect(cpu);
}

void cpu_print(const struct cpu_info *cpu)
{
    out_str("[cpu]");
    out_kv_str("vendor", cpu->vendor[0] ? cpu->vendor : "-");
    out_kv_u64("family", cpu->family);
    out_kv_u64("model", cpu->model);
    out_kv_u64("sse2", (uint64_t)cpu->sse2);
    out_kv_u64("avx", (uint64_t)cpu->avx);
    out_kv_u64("avx2", (uint64_t)cpu->avx2);
    out_kv_u64("fma", (uint64_t)cpu->fma);
    out_kv_u64("xsave", (uint64_t)cpu->xsave);
    out_kv_u64("osxsave", (uint64_t)cpu->osxsave);
    out_kv_str("hypervisor", cpu->hv_vendor[0] ? cpu->hv_vendor : (cpu->hypervisor ? "?" : "-"));
    out_end();
}

const char *cpu_kernel_name(enum kernel_id kernel)
{
    switch (kernel) {
    case KID_AVX2: return "avx2";
    case KID_AVX2_128: return "avx2-128";
    default: return "portable";
    }
}

/* auto: the 256-bit AVX2 kernel on a real (or hardware-virtualised) CPU, the 128-bit one
 * under QEMU TCG, whose 256-bit float ops are far slower than its 128-bit ones. */
struct kernel_choice cpu_choose_kernel(enum cfg_kernel request, const struct cpu_info *cpu,
                                       int avx_state)
{
    struct kernel_choice c = {KID_PORTABLE, "forced"};
    if (request == KERNEL_PORTABLE)
        return c;
    if (!cpu->avx || !cpu->avx2)
        c.reason = "no_avx2";
    else if (!cpu->fma)
        c.reason = "no_fma";
    else if (!avx_state)
        c.reason = "no_avx_state";
    else if (request == KERNEL_AVX2)
        c.kernel = KID_AVX2;
    else if (request == KERNEL_AVX2_128)
        c.kernel = KID_AVX2_128;
    else if (cpu->tcg) {
        c.kernel = KID_AVX2_128;
        c.reason = "tcg";
    } else {
        c.kernel = KID_AVX2;
        c.reason = "auto";
    }
    return c;
}

void cpu_print_kernel(struct kernel_choice choice)
{
    out_str("[cpu]");
    out_kv_str("kernel", cpu_kernel_name(choice.kernel));
    out_kv_str("reason", choice.reason);
    out_end();
}

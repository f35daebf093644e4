#include "cpu.h"
#include "out.h"

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                     : "a"(leaf), "c"(sub));
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
    cpu->avx2 = 0;
    if (max_leaf >= 7) {
        cpuid(7, 0, r);
        cpu->avx2 = (r[1] >> 5) & 1;
    }
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
    out_end();
}

struct kernel_choice cpu_choose_kernel(enum cfg_kernel request, const struct cpu_info *cpu,
                                       int avx_state)
{
    struct kernel_choice c = {0, "forced"};
    if (request == KERNEL_PORTABLE)
        return c;
    if (!cpu->avx || !cpu->avx2)
        c.reason = "no_avx2";
    else if (!cpu->fma)
        c.reason = "no_fma";
    else if (!avx_state)
        c.reason = "no_avx_state";
    else {
        c.avx2 = 1;
        c.reason = request == KERNEL_AVX2 ? "forced" : "auto";
    }
    return c;
}

void cpu_print_kernel(struct kernel_choice choice)
{
    out_str("[cpu]");
    out_kv_str("kernel", choice.avx2 ? "avx2" : "portable");
    out_kv_str("reason", choice.reason);
    out_end();
}

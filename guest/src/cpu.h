/* CPUID feature detection and the choice of inference kernel. */
#ifndef BM_CPU_H
#define BM_CPU_H

#include <stdint.h>
#include "config.h"

struct cpu_info {
    char vendor[13];
    uint32_t family;
    uint32_t model;
    int sse2, avx, avx2, fma, xsave, osxsave;
    int hypervisor;       /* CPUID.1:ECX bit 31 */
    char hv_vendor[13];   /* leaf 0x40000000 signature, '_' for unprintable; "" if none */
    int tcg;              /* the signature is QEMU TCG's: TCGTCGTCGTCG */
};

void cpu_detect(struct cpu_info *cpu);
void cpu_print(const struct cpu_info *cpu);

enum kernel_id {
    KID_PORTABLE,   /* plain C (SSE2 by the compiler) */
    KID_AVX2,       /* AVX2+FMA, 256-bit ymm forms */
    KID_AVX2_128,   /* AVX2+FMA build, 128-bit xmm forms only: fast under QEMU TCG */
};

struct kernel_choice {
    enum kernel_id kernel;
    const char *reason;   /* auto, tcg, forced, no_avx2, no_fma, no_avx_state */
};

const char *cpu_kernel_name(enum kernel_id kernel);

/* Pure decision, tested on the host: what kernel to use given the request and the CPU. */
struct kernel_choice cpu_choose_kernel(enum cfg_kernel request, const struct cpu_info *cpu,
                                       int avx_state);
void cpu_print_kernel(struct kernel_choice choice);

#endif

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
};

void cpu_detect(struct cpu_info *cpu);
void cpu_print(const struct cpu_info *cpu);

struct kernel_choice {
    int avx2;             /* 1: use the AVX2+FMA kernels */
    const char *reason;   /* auto, forced, no_avx2, no_fma, no_avx_state */
};

/* Pure decision, tested on the host: what kernel to use given the request and the CPU. */
struct kernel_choice cpu_choose_kernel(enum cfg_kernel request, const struct cpu_info *cpu,
                                       int avx_state);
void cpu_print_kernel(struct kernel_choice choice);

#endif

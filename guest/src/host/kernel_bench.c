/* Host tool: GFLOP/s of the matmul kernels on stories15M shapes, from L2-resident to
 * DRAM-streamed weights. Usage: kernel-bench (prints one line per kernel and shape). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "../cpu.h"
#include "../kernels.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best of several timed batches, so other load on the machine inflates nothing. */
static double gflops(const struct kernels *k, float *out, const float *x, const float *w,
                     int n, int d)
{
    double flops = 2.0 * n * d;
    int reps = (int)(2e8 / flops) + 1;
    double best = 1e30;
    for (int batch = 0; batch < 7; batch++) {
        double t0 = now_s();
        for (int r = 0; r < reps; r++)
            k->matmul(out, x, w, n, d);
        double t = (now_s() - t0) / reps;
        if (t < best)
            best = t;
    }
    return flops / best / 1e9;
}

int main(void)
{
    const int shapes[][2] = {{288, 288}, {288, 768}, {768, 288}, {288, 32000}};
    const char *names[] = {"wq 288x288", "w1 768x288", "w2 288x768", "wcls 32000x288"};
    struct cpu_info cpu;
    cpu_detect(&cpu);
    unsigned lo = 0, hi = 0;
    if (cpu.osxsave)
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    int avx2 = cpu_choose_kernel(KERNEL_AVX2, &cpu, (lo & 6) == 6).kernel == KID_AVX2;

    size_t max = 288 * 32000;
    float *w = aligned_alloc(64, max * sizeof(float));
    float *x = aligned_alloc(64, 1024 * sizeof(float));
    float *out = aligned_alloc(64, 32000 * sizeof(float));
    if (!w || !x || !out)
        return 1;
    for (size_t i = 0; i < max; i++)
        w[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (int i = 0; i < 1024; i++)
        x[i] = (float)(i % 17) / 17.0f;
    for (int s = 0; s < 4; s++) {
        int n = shapes[s][0], d = shapes[s][1];
        double p = gflops(&kernels_portable, out, x, w, n, d);
        if (avx2) {
            double a = gflops(&kernels_avx2, out, x, w, n, d);
            double h = gflops(&kernels_avx2_128, out, x, w, n, d);
            printf("matmul %-15s portable %6.2f GFLOP/s  avx2 %6.2f GFLOP/s  ratio %.2fx"
                   "  avx2-128 %6.2f GFLOP/s  ratio %.2fx\n", names[s], p, a, a / p, h, h / p);
        } else {
            printf("matmul %-15s portable %6.2f GFLOP/s  (no AVX2+FMA)\n", names[s], p);
        }
    }
    free(w);
    free(x);
    free(out);
    return 0;
}

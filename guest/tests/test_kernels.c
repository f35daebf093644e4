#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"
#include "kernels.h"
#include "test.h"

static float rand_unit(unsigned *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / 8388608.0f - 1.0f;
}

static int avx2_usable(void)
{
    struct cpu_info cpu;
    cpu_detect(&cpu);
    if (!cpu.osxsave)
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return cpu_choose_kernel(KERNEL_AUTO, &cpu, (lo & 6) == 6).avx2;
}

static double diff(double a, double b)
{
    return a > b ? a - b : b - a;
}

static void compare(const struct kernels *k, int n, int d, const float *w, const float *x)
{
    float out[64];
    k->matmul(out, x, w, n, d);
    for (int i = 0; i < d; i++) {
        double want = 0.0;
        for (int j = 0; j < n; j++)
            want += (double)w[i * n + j] * x[j];
        CHECK(diff(out[i], want) < 1e-4);
    }
    float y[300], y0[300];
    for (int i = 0; i < n; i++)
        y[i] = y0[i] = x[i] * 0.5f;
    k->axpy(y, 0.25f, w, n);
    for (int i = 0; i < n; i++)
        CHECK(diff(y[i], y0[i] + 0.25 * w[i]) < 1e-6);
    double dot = 0.0;
    for (int j = 0; j < n; j++)
        dot += (double)w[j] * x[j];
    CHECK(diff(k->dot(w, x, n), dot) < 1e-4);
}

void test_kernels(void)
{
    static float w[64 * 300], x[300];
    unsigned state = 7;
    for (int i = 0; i < 64 * 300; i++)
        w[i] = rand_unit(&state);
    for (int i = 0; i < 300; i++)
        x[i] = rand_unit(&state);

    int shapes[][2] = {{288, 64}, {67, 13}, {7, 3}, {16, 5}, {300, 61}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        compare(&kernels_portable, shapes[s][0], shapes[s][1], w, x);
    if (avx2_usable()) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            compare(&kernels_avx2, shapes[s][0], shapes[s][1], w, x);
    } else {
        printf("test_kernels: no AVX2+FMA here, avx2 kernel not tested\n");
    }

    struct cpu_info cpu = {"GenuineIntel", 6, 94, 1, 1, 1, 1, 1, 1};
    struct kernel_choice c = cpu_choose_kernel(KERNEL_AUTO, &cpu, 1);
    CHECK(c.avx2 == 1 && strcmp(c.reason, "auto") == 0);
    c = cpu_choose_kernel(KERNEL_PORTABLE, &cpu, 1);
    CHECK(c.avx2 == 0 && strcmp(c.reason, "forced") == 0);
    c = cpu_choose_kernel(KERNEL_AUTO, &cpu, 0);
    CHECK(c.avx2 == 0 && strcmp(c.reason, "no_avx_state") == 0);
    cpu.fma = 0;
    c = cpu_choose_kernel(KERNEL_AVX2, &cpu, 1);
    CHECK(c.avx2 == 0 && strcmp(c.reason, "no_fma") == 0);
    cpu.avx2 = 0;
    c = cpu_choose_kernel(KERNEL_AVX2, &cpu, 1);
    CHECK(c.avx2 == 0 && strcmp(c.reason, "no_avx2") == 0);
}

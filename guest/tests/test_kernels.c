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
    return cpu_choose_kernel(KERNEL_AVX2, &cpu, (lo & 6) == 6).kernel == KID_AVX2;
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

/* The 128-bit kernel agrees with the portable one element by element (relative 1e-5):
 * the sums differ only in order and in FMA's single rounding. */
static void same_as_portable(const struct kernels *k, int n, int d, const float *w,
                             const float *x)
{
    float a[64], b[64];
    k->matmul(a, x, w, n, d);
    kernels_portable.matmul(b, x, w, n, d);
    for (int i = 0; i < d; i++)
        CHECK(diff(a[i], b[i]) <= 1e-5 * (1.0 + (b[i] < 0 ? -b[i] : b[i])));
}

/* A kernel's optional scores/mix give the same bits as its dot/axpy loops. */
static void attention_same_bits(const struct kernels *k, const float *w, int head, int stride,
                                int npos)
{
    if (!k->scores || !k->mix)
        return;
    float a[64], b[64], out_a[72], out_b[72];
    const float *q = w + 5, *keys = w + 300, *vals = w + 3000;
    k->scores(a, q, keys, stride, npos, head, 0.125f);
    for (int p = 0; p < npos; p++)
        b[p] = k->dot(q, keys + p * stride, head) * 0.125f;
    int same = 1;
    for (int p = 0; p < npos; p++)
        same &= a[p] == b[p];
    CHECK(same);
    k->mix(out_a, a, vals, stride, npos, head);
    memset(out_b, 0, sizeof out_b);
    for (int p = 0; p < npos; p++)
        k->axpy(out_b, a[p], vals + p * stride, head);
    same = 1;
    for (int i = 0; i < head; i++)
        same &= out_a[i] == out_b[i];
    CHECK(same);
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
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            compare(&kernels_avx2, shapes[s][0], shapes[s][1], w, x);
            compare(&kernels_avx2_128, shapes[s][0], shapes[s][1], w, x);
            same_as_portable(&kernels_avx2_128, shapes[s][0], shapes[s][1], w, x);
        }
        int heads[][3] = {{48, 288, 37}, {64, 128, 64}, {20, 40, 9}, {8, 8, 1}, {3, 5, 4}};
        for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++)
            attention_same_bits(&kernels_avx2, w, heads[h][0], heads[h][1], heads[h][2]);
    } else {
        printf("test_kernels: no AVX2+FMA here, avx2 kernel not tested\n");
    }

    struct cpu_info cpu = {.vendor = "GenuineIntel", .family = 6, .model = 94, .sse2 = 1,
                           .avx = 1, .avx2 = 1, .fma = 1, .xsave = 1, .osxsave = 1};
    struct kernel_choice c = cpu_choose_kernel(KERNEL_AUTO, &cpu, 1);
    CHECK(c.kernel == KID_AVX2 && strcmp(c.reason, "auto") == 0);
    c = cpu_choose_kernel(KERNEL_PORTABLE, &cpu, 1);
    CHECK(c.kernel == KID_PORTABLE && strcmp(c.reason, "forced") == 0);
    c = cpu_choose_kernel(KERNEL_AVX2_128, &cpu, 1);
    CHECK(c.kernel == KID_AVX2_128 && strcmp(c.reason, "forced") == 0);
    c = cpu_choose_kernel(KERNEL_AUTO, &cpu, 0);
    CHECK(c.kernel == KID_PORTABLE && strcmp(c.reason, "no_avx_state") == 0);
    /* Under QEMU TCG auto takes the 128-bit kernel; kernel=avx2 still forces 256-bit. */
    cpu.hypervisor = cpu.tcg = 1;
    c = cpu_choose_kernel(KERNEL_AUTO, &cpu, 1);
    CHECK(c.kernel == KID_AVX2_128 && strcmp(c.reason, "tcg") == 0);
    c = cpu_choose_kernel(KERNEL_AVX2, &cpu, 1);
    CHECK(c.kernel == KID_AVX2 && strcmp(c.reason, "forced") == 0);
    c = cpu_choose_kernel(KERNEL_AUTO, &cpu, 0);
    CHECK(c.kernel == KID_PORTABLE && strcmp(c.reason, "no_avx_state") == 0);
    /* A hypervisor that is not TCG (KVM, WHPX) runs ymm at native speed. */
    cpu.tcg = 0;
    c = cpu_choose_kernel(KERNEL_AUTO, &cpu, 1);
    CHECK(c.kernel == KID_AVX2 && strcmp(c.reason, "auto") == 0);
    cpu.fma = 0;
    c = cpu_choose_kernel(KERNEL_AVX2, &cpu, 1);
    CHECK(c.kernel == KID_PORTABLE && strcmp(c.reason, "no_fma") == 0);
    c = cpu_choose_kernel(KERNEL_AVX2_128, &cpu, 1);
    CHECK(c.kernel == KID_PORTABLE && strcmp(c.reason, "no_fma") == 0);
    cpu.avx2 = 0;
    c = cpu_choose_kernel(KERNEL_AVX2, &cpu, 1);
    CHECK(c.kernel == KID_PORTABLE && strcmp(c.reason, "no_avx2") == 0);
}

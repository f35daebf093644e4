/* The hot loops of the forward pass, in two builds: portable C (SSE2 at most, by the
 * compiler) and AVX2+FMA intrinsics. The AVX2 set may only be used after cpu_choose_kernel
 * said so. */
#ifndef BM_KERNELS_H
#define BM_KERNELS_H

struct kernels {
    /* out[i] = sum_j w[i*n + j] * x[j], for i < d */
    void (*matmul)(float *out, const float *x, const float *w, int n, int d);
    float (*dot)(const float *a, const float *b, int n);
    /* y[i] += a * x[i] */
    void (*axpy)(float *y, float a, const float *x, int n);
};

extern const struct kernels kernels_portable;
extern const struct kernels kernels_avx2;

#endif

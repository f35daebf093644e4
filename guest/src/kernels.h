/* The hot loops of the forward pass, in three builds: portable C (SSE2 at most, by the
 * compiler), AVX2+FMA intrinsics on 256-bit ymm registers, and the same on 128-bit xmm
 * registers only. The AVX2 sets may only be used after cpu_choose_kernel said so. */
#ifndef BM_KERNELS_H
#define BM_KERNELS_H

struct kernels {
    /* out[i] = sum_j w[i*n + j] * x[j], for i < d */
    void (*matmul)(float *out, const float *x, const float *w, int n, int d);
    float (*dot)(const float *a, const float *b, int n);
    /* y[i] += a * x[i] */
    void (*axpy)(float *y, float a, const float *x, int n);
    /* Optional (NULL: the caller loops over dot and axpy; results are the same bits).
     * att[p] = dot(q, k + p*stride, head) * scale, for p < npos */
    void (*scores)(float *att, const float *q, const float *k, int stride, int npos, int head,
                   float scale);
    /* out[i] = sum over p < npos of att[p] * v[p*stride + i], accumulated in p order */
    void (*mix)(float *out, const float *att, const float *v, int stride, int npos, int head);
};

extern const struct kernels kernels_portable;
extern const struct kernels kernels_avx2;
extern const struct kernels kernels_avx2_128;

#endif

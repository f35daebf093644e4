/* The kernels every x86-64 CPU runs: SSE2 (part of x86-64), four floats at a time.
 * Under QEMU TCG each SSE float instruction is a helper call and each load a soft-TLB
 * lookup, so the cost follows the guest instruction count: the matmul takes four rows at
 * a time (each load of x serves four rows) and reduces the four rows' sums together.
 * Without SSE2 (another architecture), plain C in fixed-size blocks that gcc -O2
 * vectorises (floating-point sums are not reassociated without -ffast-math). */
#include "kernels.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static float dot_portable(const float *a, const float *b, int n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        for (int l = 0; l < 8; l++)
            acc[l] += a[j + l] * b[j + l];
    }
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < n; j++)
        sum += a[j] * b[j];
    return sum;
}

#ifdef __SSE2__
/* [sum(a0), sum(a1), sum(a2), sum(a3)] */
static __m128 sum4(__m128 a0, __m128 a1, __m128 a2, __m128 a3)
{
    __m128 s01 = _mm_add_ps(_mm_unpacklo_ps(a0, a1), _mm_unpackhi_ps(a0, a1));
    __m128 s23 = _mm_add_ps(_mm_unpacklo_ps(a2, a3), _mm_unpackhi_ps(a2, a3));
    return _mm_add_ps(_mm_movelh_ps(s01, s23), _mm_movehl_ps(s23, s01));
}

static void matmul_portable(float *out, const float *x, const float *w, int n, int d)
{
    int i = 0;
    int n4 = n & ~3;
    for (; i + 4 <= d; i += 4) {
        const float *w0 = w + (long)i * n;
        const float *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps();
        __m128 a2 = _mm_setzero_ps(), a3 = _mm_setzero_ps();
        for (int j = 0; j < n4; j += 4) {
            __m128 xv = _mm_loadu_ps(x + j);
            a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_loadu_ps(w0 + j), xv));
            a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_loadu_ps(w1 + j), xv));
            a2 = _mm_add_ps(a2, _mm_mul_ps(_mm_loadu_ps(w2 + j), xv));
            a3 = _mm_add_ps(a3, _mm_mul_ps(_mm_loadu_ps(w3 + j), xv));
        }
        __m128 s = sum4(a0, a1, a2, a3);
        if (n4 < n) {
            float t[4];
            _mm_storeu_ps(t, s);
            for (int j = n4; j < n; j++) {
                t[0] += w0[j] * x[j];
                t[1] += w1[j] * x[j];
                t[2] += w2[j] * x[j];
                t[3] += w3[j] * x[j];
            }
            s = _mm_loadu_ps(t);
        }
        _mm_storeu_ps(out + i, s);
    }
    for (; i < d; i++)
        out[i] = dot_portable(x, w + (long)i * n, n);
}

static void axpy_portable(float *y, float a, const float *x, int n)
{
    __m128 av = _mm_set1_ps(a);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(y + i, _mm_add_ps(_mm_loadu_ps(y + i), _mm_mul_ps(av, _mm_loadu_ps(x + i))));
    for (; i < n; i++)
        y[i] += a * x[i];
}
#else
static void matmul_portable(float *out, const float *x, const float *w, int n, int d)
{
    for (int i = 0; i < d; i++)
        out[i] = dot_portable(x, w + (long)i * n, n);
}

static void axpy_portable(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}
#endif

const struct kernels kernels_portable = {matmul_portable, dot_portable, axpy_portable, 0, 0};

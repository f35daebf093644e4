/* AVX2-build kernels that use only 128-bit (xmm) VEX forms: FMA on four floats at a time.
 * Chosen under QEMU TCG, where 256-bit float ops are ~20x slower than 128-bit ones on
 * Intel hosts (benchmarks/README.md). Built with -mavx2 -mfma like kernels_avx2.c; the
 * Makefile's test checks that no ymm register appears in this object. */
#include <immintrin.h>
#include "kernels.h"

static float hsum128(__m128 s)
{
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float dot_avx128(const float *a, const float *b, int n)
{
    __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        acc0 = _mm_fmadd_ps(_mm_loadu_ps(a + j), _mm_loadu_ps(b + j), acc0);
        acc1 = _mm_fmadd_ps(_mm_loadu_ps(a + j + 4), _mm_loadu_ps(b + j + 4), acc1);
    }
    float sum = hsum128(_mm_add_ps(acc0, acc1));
    for (; j < n; j++)
        sum += a[j] * b[j];
    return sum;
}

/* Four rows at a time share each load of x, as in the 256-bit kernel. */
static void matmul_avx128(float *out, const float *x, const float *w, int n, int d)
{
    int i = 0;
    for (; i + 4 <= d; i += 4) {
        const float *w0 = w + (long)i * n;
        const float *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps();
        __m128 a2 = _mm_setzero_ps(), a3 = _mm_setzero_ps();
        int j = 0;
        for (; j + 4 <= n; j += 4) {
            __m128 xv = _mm_loadu_ps(x + j);
            a0 = _mm_fmadd_ps(_mm_loadu_ps(w0 + j), xv, a0);
            a1 = _mm_fmadd_ps(_mm_loadu_ps(w1 + j), xv, a1);
            a2 = _mm_fmadd_ps(_mm_loadu_ps(w2 + j), xv, a2);
            a3 = _mm_fmadd_ps(_mm_loadu_ps(w3 + j), xv, a3);
        }
        float s0 = hsum128(a0), s1 = hsum128(a1), s2 = hsum128(a2), s3 = hsum128(a3);
        for (; j < n; j++) {
            s0 += w0[j] * x[j];
            s1 += w1[j] * x[j];
            s2 += w2[j] * x[j];
            s3 += w3[j] * x[j];
        }
        out[i] = s0;
        out[i + 1] = s1;
        out[i + 2] = s2;
        out[i + 3] = s3;
    }
    for (; i < d; i++)
        out[i] = dot_avx128(x, w + (long)i * n, n);
}

static void axpy_avx128(float *y, float a, const float *x, int n)
{
    __m128 av = _mm_set1_ps(a);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(y + i, _mm_fmadd_ps(av, _mm_loadu_ps(x + i), _mm_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

const struct kernels kernels_avx2_128 = {matmul_avx128, dot_avx128, axpy_avx128, 0, 0};

/* AVX2 + FMA kernels: the only file built with -mavx2 -mfma. */
#include <immintrin.h>
#include "kernels.h"

static float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float dot_avx2(const float *a, const float *b, int n)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), acc1);
    }
    for (; j + 8 <= n; j += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), acc0);
    float sum = hsum(_mm256_add_ps(acc0, acc1));
    for (; j < n; j++)
        sum += a[j] * b[j];
    return sum;
}

/* Four rows at a time share each load of x. The four interleaved row streams defeat the
 * hardware prefetcher when weights come from DRAM (the usual case: a checkpoint is larger
 * than the caches), so the next block of rows is prefetched explicitly, 128 bytes a step. */
static void matmul_avx2(float *out, const float *x, const float *w, int n, int d)
{
    int i = 0;
    for (; i + 4 <= d; i += 4) {
        const float *w0 = w + (long)i * n;
        const float *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        const char *next = (const char *)(w0 + 4 * (long)n);
        int j = 0;
        for (; j + 8 <= n; j += 8) {
            _mm_prefetch(next + 16 * (long)j, _MM_HINT_T0);
            _mm_prefetch(next + 16 * (long)j + 64, _MM_HINT_T0);
            __m256 xv = _mm256_loadu_ps(x + j);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j), xv, a3);
        }
        float s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
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
        out[i] = dot_avx2(x, w + (long)i * n, n);
}

static void axpy_avx2(float *y, float a, const float *x, int n)
{
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

/* The attention loops of one head without a call per position (head sizes are small:
 * 48 or 64 floats, so the call and the reduction dominated). Same operations in the same
 * order as dot_avx2 and axpy_avx2, so the same bits. */
static void scores_avx2(float *att, const float *q, const float *k, int stride, int npos,
                        int head, float scale)
{
    for (int p = 0; p < npos; p++)
        att[p] = dot_avx2(q, k + (long)p * stride, head) * scale;
}

static void mix_avx2(float *out, const float *att, const float *v, int stride, int npos,
                     int head)
{
    int i = 0;
    for (; i + 16 <= head; i += 16) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int p = 0; p < npos; p++) {
            const float *vp = v + (long)p * stride + i;
            __m256 w = _mm256_set1_ps(att[p]);
            a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vp), a0);
            a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(vp + 8), a1);
        }
        _mm256_storeu_ps(out + i, a0);
        _mm256_storeu_ps(out + i + 8, a1);
    }
    for (; i + 8 <= head; i += 8) {
        __m256 a0 = _mm256_setzero_ps();
        for (int p = 0; p < npos; p++)
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(att[p]), _mm256_loadu_ps(v + (long)p * stride + i), a0);
        _mm256_storeu_ps(out + i, a0);
    }
    for (; i < head; i++) {
        float s = 0.0f;
        for (int p = 0; p < npos; p++)
            s += att[p] * v[(long)p * stride + i];
        out[i] = s;
    }
}

const struct kernels kernels_avx2 = {matmul_avx2, dot_avx2, axpy_avx2, scores_avx2, mix_avx2};

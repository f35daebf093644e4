/* Micro-benchmark of vector instruction forms under QEMU TCG (qemu-x86_64 -cpu max).
 * Each case is a 1024x1024 matrix-vector product done REPS times, in one instruction form:
 * 256-bit (ymm) or 128-bit (xmm, VEX or legacy SSE encoding), float with and without FMA,
 * and 32-bit integer. Prints "name ms checksum" per case. Built static by tcg_vectors.py. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define N 1024
#define REPS 4

static float wf[N * N], xf[N], of[N];
static int32_t wi[N * N], xi[N], oi[N];

#define AVX __attribute__((target("avx2,fma")))

AVX static void f_ymm_fma(void)
{
    for (int i = 0; i < N; i++) {
        __m256 a = _mm256_setzero_ps();
        for (int j = 0; j < N; j += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(wf + i * N + j), _mm256_loadu_ps(xf + j), a);
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        of[i] = _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(s, s), s));
    }
}

AVX static void f_ymm_muladd(void)
{
    for (int i = 0; i < N; i++) {
        __m256 a = _mm256_setzero_ps();
        for (int j = 0; j < N; j += 8)
            a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(wf + i * N + j),
                                               _mm256_loadu_ps(xf + j)));
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        of[i] = _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(s, s), s));
    }
}

AVX static void f_xmm_vex_fma(void)
{
    for (int i = 0; i < N; i++) {
        __m128 a = _mm_setzero_ps();
        for (int j = 0; j < N; j += 4)
            a = _mm_fmadd_ps(_mm_loadu_ps(wf + i * N + j), _mm_loadu_ps(xf + j), a);
        of[i] = _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(a, a), a));
    }
}

AVX static void f_xmm_vex_muladd(void)
{
    for (int i = 0; i < N; i++) {
        __m128 a = _mm_setzero_ps();
        for (int j = 0; j < N; j += 4)
            a = _mm_add_ps(a, _mm_mul_ps(_mm_loadu_ps(wf + i * N + j), _mm_loadu_ps(xf + j)));
        of[i] = _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(a, a), a));
    }
}

/* No target attribute: legacy (non-VEX) SSE encoding. */
static void f_xmm_sse_muladd(void)
{
    for (int i = 0; i < N; i++) {
        __m128 a = _mm_setzero_ps();
        for (int j = 0; j < N; j += 4)
            a = _mm_add_ps(a, _mm_mul_ps(_mm_loadu_ps(wf + i * N + j), _mm_loadu_ps(xf + j)));
        float t[4];
        _mm_storeu_ps(t, a);
        of[i] = (t[0] + t[1]) + (t[2] + t[3]);
    }
}

AVX static void i_ymm(void)
{
    for (int i = 0; i < N; i++) {
        __m256i a = _mm256_setzero_si256();
        for (int j = 0; j < N; j += 8)
            a = _mm256_add_epi32(a, _mm256_mullo_epi32(
                _mm256_loadu_si256((const __m256i *)(wi + i * N + j)),
                _mm256_loadu_si256((const __m256i *)(xi + j))));
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, a);
        oi[i] = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
    }
}

AVX static void i_xmm_vex(void)
{
    for (int i = 0; i < N; i++) {
        __m128i a = _mm_setzero_si128();
        for (int j = 0; j < N; j += 4)
            a = _mm_add_epi32(a, _mm_mullo_epi32(_mm_loadu_si128((const __m128i *)(wi + i * N + j)),
                                                 _mm_loadu_si128((const __m128i *)(xi + j))));
        int32_t t[4];
        _mm_storeu_si128((__m128i *)t, a);
        oi[i] = t[0] + t[1] + t[2] + t[3];
    }
}

/* Legacy SSE2 has no 32-bit multiply-low: add-only, the same load pattern. */
static void i_xmm_sse_add(void)
{
    for (int i = 0; i < N; i++) {
        __m128i a = _mm_setzero_si128();
        for (int j = 0; j < N; j += 4)
            a = _mm_add_epi32(a, _mm_add_epi32(_mm_loadu_si128((const __m128i *)(wi + i * N + j)),
                                               _mm_loadu_si128((const __m128i *)(xi + j))));
        int32_t t[4];
        _mm_storeu_si128((__m128i *)t, a);
        oi[i] = t[0] + t[1] + t[2] + t[3];
    }
}

AVX static void i_ymm_add(void)
{
    for (int i = 0; i < N; i++) {
        __m256i a = _mm256_setzero_si256();
        for (int j = 0; j < N; j += 8)
            a = _mm256_add_epi32(a, _mm256_add_epi32(
                _mm256_loadu_si256((const __m256i *)(wi + i * N + j)),
                _mm256_loadu_si256((const __m256i *)(xi + j))));
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, a);
        oi[i] = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
    }
}

/* xmm float work with one ymm integer add per step: does 256-bit state alone slow the
 * 128-bit float helpers down (host AVX/SSE transition), or only 256-bit float ops? */
AVX static void f_xmm_mixed_ymm_int(void)
{
    __m256i k = _mm256_setzero_si256();
    for (int i = 0; i < N; i++) {
        __m128 a = _mm_setzero_ps();
        for (int j = 0; j < N; j += 4) {
            k = _mm256_add_epi32(k, _mm256_loadu_si256((const __m256i *)(wi + j)));
            a = _mm_fmadd_ps(_mm_loadu_ps(wf + i * N + j), _mm_loadu_ps(xf + j), a);
        }
        of[i] = _mm_cvtss_f32(_mm_hadd_ps(_mm_hadd_ps(a, a), a));
    }
    oi[0] = _mm256_extract_epi32(k, 0);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct bench { const char *name; void (*fn)(void); int is_float; };

int main(void)
{
    uint32_t s = 1;
    for (int i = 0; i < N * N; i++) {
        s = s * 1664525u + 1013904223u;
        wf[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
        wi[i] = (int32_t)(s >> 20);
    }
    for (int j = 0; j < N; j++) {
        xf[j] = (float)j / N;
        xi[j] = j;
    }
    static const struct bench benches[] = {
        {"float ymm vfmadd231ps", f_ymm_fma, 1},
        {"float ymm vmulps+vaddps", f_ymm_muladd, 1},
        {"float xmm vfmadd231ps (VEX)", f_xmm_vex_fma, 1},
        {"float xmm vmulps+vaddps (VEX)", f_xmm_vex_muladd, 1},
        {"float xmm mulps+addps (SSE)", f_xmm_sse_muladd, 1},
        {"float xmm vfmadd231ps + ymm vpaddd", f_xmm_mixed_ymm_int, 1},
        {"int32 ymm vpmulld+vpaddd", i_ymm, 0},
        {"int32 xmm vpmulld+vpaddd (VEX)", i_xmm_vex, 0},
        {"int32 ymm vpaddd+vpaddd", i_ymm_add, 0},
        {"int32 xmm paddd+paddd (SSE)", i_xmm_sse_add, 0},
    };
    for (size_t b = 0; b < sizeof benches / sizeof benches[0]; b++) {
        double t0 = now_ms();
        for (int r = 0; r < REPS; r++)
            benches[b].fn();
        double ms = now_ms() - t0;
        double check = 0;
        for (int i = 0; i < N; i++)
            check += benches[b].is_float ? (double)of[i] : (double)oi[i];
        printf("%s|%.1f|%.6g\n", benches[b].name, ms, check);
    }
    return 0;
}

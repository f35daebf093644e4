#include "mathf.h"
#include <stdint.h>
#include "bmlib.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static const double LN2 = 0.69314718055994530942;

static double scale_pow2(double r, int64_t n)
{
    /* Builds 2^n directly in the exponent bits; n is clamped by the callers. */
    uint64_t bits = (uint64_t)(n + 1023) << 52;
    double p;
    bm_memcpy(&p, &bits, sizeof p);
    return r * p;
}

double bm_exp(double x)
{
    if (x > 709.0)
        x = 709.0;
    if (x < -708.0)
        return 0.0;
    double k = x / LN2;
    int64_t n = (int64_t)(k < 0 ? k - 0.5 : k + 0.5);
    double r = x - (double)n * LN2;   /* |r| <= ln2/2 */
    /* Taylor series to degree 13: error below 1e-16 on that interval. */
    double term = 1.0, sum = 1.0;
    for (int i = 1; i <= 13; i++) {
        term *= r / i;
        sum += term;
    }
    return scale_pow2(sum, n);
}

/* exp(x) = 2^n * exp(r), r in [-ln2/2, ln2/2], degree-6 polynomial (rel. error ~2e-7). */
static inline float expf_core(float x)
{
    if (x > 88.0f)
        x = 88.0f;
    if (x < -87.0f)
        return 0.0f;
    float k = x * 1.44269504f;
    int32_t n = (int32_t)(k < 0 ? k - 0.5f : k + 0.5f);
    float r = x - (float)n * 0.693145752f - (float)n * 1.42860677e-6f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666716f +
              r * (0.00833333377f + r * 0.00138888892f)))));
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float s;
    __builtin_memcpy(&s, &bits, sizeof s);
    return p * s;
}

float bm_expf(float x)
{
    return expf_core(x);
}

static inline float silu_mul1(float v, float g)
{
    return v * (1.0f / (1.0f + expf_core(-v))) * g;
}

#ifdef __SSE2__
/* expf_core on four lanes with SSE2 (every x86-64 CPU): the same operations in the same
 * order, so each lane is bit-identical to the scalar result (gcc -O2 does not vectorise
 * the scalar form: its clamps stay branches). */
static inline __m128 expf4(__m128 x)
{
    x = _mm_min_ps(_mm_set1_ps(88.0f), x);             /* 88 < x ? 88 : x */
    __m128 under = _mm_cmplt_ps(x, _mm_set1_ps(-87.0f));
    x = _mm_max_ps(_mm_set1_ps(-87.0f), x);            /* lanes under -87 give 0 below */
    __m128 k = _mm_mul_ps(x, _mm_set1_ps(1.44269504f));
    __m128 neg = _mm_cmplt_ps(k, _mm_setzero_ps());
    __m128 half = _mm_or_ps(_mm_and_ps(neg, _mm_set1_ps(-0.5f)),
                            _mm_andnot_ps(neg, _mm_set1_ps(0.5f)));
    __m128i n = _mm_cvttps_epi32(_mm_add_ps(k, half));
    __m128 nf = _mm_cvtepi32_ps(n);
    __m128 r = _mm_sub_ps(_mm_sub_ps(x, _mm_mul_ps(nf, _mm_set1_ps(0.693145752f))),
                          _mm_mul_ps(nf, _mm_set1_ps(1.42860677e-6f)));
    __m128 p = _mm_add_ps(_mm_set1_ps(0.00833333377f), _mm_mul_ps(r, _mm_set1_ps(0.00138888892f)));
    p = _mm_add_ps(_mm_set1_ps(0.0416666716f), _mm_mul_ps(r, p));
    p = _mm_add_ps(_mm_set1_ps(0.166666672f), _mm_mul_ps(r, p));
    p = _mm_add_ps(_mm_set1_ps(0.5f), _mm_mul_ps(r, p));
    p = _mm_add_ps(_mm_set1_ps(1.0f), _mm_mul_ps(r, p));
    p = _mm_add_ps(_mm_set1_ps(1.0f), _mm_mul_ps(r, p));
    __m128i bits = _mm_slli_epi32(_mm_add_epi32(n, _mm_set1_epi32(127)), 23);
    return _mm_andnot_ps(under, _mm_mul_ps(p, _mm_castsi128_ps(bits)));
}
#endif

void silu_mul(float *h, const float *g, int n)
{
    int i = 0;
#ifdef __SSE2__
    const __m128 one = _mm_set1_ps(1.0f), sign = _mm_set1_ps(-0.0f);
    for (; i + 4 <= n; i += 4) {
        __m128 v = _mm_loadu_ps(h + i);
        __m128 e = expf4(_mm_xor_ps(v, sign));
        __m128 y = _mm_mul_ps(v, _mm_div_ps(one, _mm_add_ps(one, e)));
        _mm_storeu_ps(h + i, _mm_mul_ps(y, _mm_loadu_ps(g + i)));
    }
#endif
    for (; i < n; i++)
        h[i] = silu_mul1(h[i], g[i]);
}

float bm_sqrtf(float x)
{
    return __builtin_sqrtf(x);
}

double bm_log(double x)
{
    if (x <= 0.0)
        return -745.0;
    uint64_t bits;
    bm_memcpy(&bits, &x, sizeof bits);
    int64_t e = (int64_t)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m;
    bm_memcpy(&m, &bits, sizeof m);   /* m in [1, 2) */
    if (m > 1.41421356237309505) {
        m *= 0.5;
        e++;
    }
    /* log(m) = 2 atanh(t), t = (m-1)/(m+1), |t| < 0.172 */
    double t = (m - 1.0) / (m + 1.0);
    double t2 = t * t, term = t, sum = 0.0;
    for (int i = 1; i <= 41; i += 2) {
        sum += term / i;
        term *= t2;
    }
    return 2.0 * sum + (double)e * LN2;
}

double bm_pow(double base, double e)
{
    return bm_exp(e * bm_log(base));
}

/* sin on [-pi/4, pi/4] and cos likewise, by Taylor series. */
static double sin_small(double x)
{
    double x2 = x * x, term = x, sum = x;
    for (int i = 1; i <= 10; i++) {
        term *= -x2 / ((2 * i) * (2 * i + 1));
        sum += term;
    }
    return sum;
}

static double cos_small(double x)
{
    double x2 = x * x, term = 1.0, sum = 1.0;
    for (int i = 1; i <= 10; i++) {
        term *= -x2 / ((2 * i - 1) * (2 * i));
        sum += term;
    }
    return sum;
}

/* Reduces x to r in [-pi/4, pi/4] with x = r + q*pi/2; returns q mod 4. */
static int reduce(double x, double *r)
{
    const double half_pi_hi = 1.57079632673412561417;
    const double half_pi_lo = 6.07710050650619224932e-11;
    double k = x / (BM_PI / 2);
    int64_t q = (int64_t)(k < 0 ? k - 0.5 : k + 0.5);
    *r = (x - (double)q * half_pi_hi) - (double)q * half_pi_lo;
    return (int)(q & 3);
}

double bm_sin(double x)
{
    double r;
    switch (reduce(x, &r)) {
    case 0: return sin_small(r);
    case 1: return cos_small(r);
    case 2: return -sin_small(r);
    default: return -cos_small(r);
    }
}

double bm_cos(double x)
{
    double r;
    switch (reduce(x, &r)) {
    case 0: return cos_small(r);
    case 1: return -sin_small(r);
    case 2: return -cos_small(r);
    default: return sin_small(r);
    }
}

/* In place: x becomes exp(x - max) / sum, stable for large logits. */
void softmax(float *x, int n)
{
    float max = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] > max)
            max = x[i];
    }
    /* the sum stays sequential (same order as ever); the exponentials go in blocks */
    int i = 0;
#ifdef __SSE2__
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(x + i, expf4(_mm_sub_ps(_mm_loadu_ps(x + i), _mm_set1_ps(max))));
#endif
    for (; i < n; i++)
        x[i] = expf_core(x[i] - max);
    float sum = 0.0f;
    for (i = 0; i < n; i++)
        sum += x[i];
    for (i = 0; i < n; i++)
        x[i] /= sum;
}

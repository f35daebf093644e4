#include "sampler.h"
#include "mathf.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

void rng_seed(struct rng *r, uint64_t seed)
{
    r->state = seed;
}

uint32_t rng_next_u32(struct rng *r)
{
    uint64_t s = r->state;
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    r->state = s;
    return (uint32_t)((s * 0x2545F4914F6CDD1DULL) >> 32);
}

float rng_next_f32(struct rng *r)
{
    return (float)(rng_next_u32(r) >> 8) / 16777216.0f;
}

size_t sampler_arena_bytes(int vocab)
{
    size_t v = (size_t)vocab;
    return bm_arena_need(v * sizeof(float)) + 2 * bm_arena_need(v * sizeof(int32_t));
}

int sampler_init(struct sampler *s, int vocab, float temperature, float topp, uint64_t seed,
                 struct bm_arena *arena)
{
    size_t v = (size_t)vocab;
    s->vocab = vocab;
    s->temperature = temperature;
    s->topp = topp;
    rng_seed(&s->rng, seed);
    s->probs = bm_arena_take(arena, v * sizeof(float));
    s->idx = bm_arena_take(arena, v * sizeof(int32_t));
    s->tmp = bm_arena_take(arena, v * sizeof(int32_t));
    return s->probs && s->idx && s->tmp ? 0 : -1;
}

static int argmax_scalar(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (x[i] > x[best])
            best = i;
    }
    return best;
}

/* The first index of the largest value, as argmax_scalar; with SSE2 the maximum is found
 * four lanes at a time (a 32000-entry vocabulary per token), then its first index. A NaN
 * anywhere falls back to the scalar rule. */
int sample_argmax(const float *x, int n)
{
#ifdef __SSE2__
    if (n >= 8) {
        __m128 m = _mm_loadu_ps(x), nan = _mm_cmpunord_ps(m, m);
        int i = 4;
        for (; i + 4 <= n; i += 4) {
            __m128 v = _mm_loadu_ps(x + i);
            nan = _mm_or_ps(nan, _mm_cmpunord_ps(v, v));
            m = _mm_max_ps(m, v);
        }
        float lanes[4];
        _mm_storeu_ps(lanes, m);
        float max = lanes[0];
        for (int l = 1; l < 4; l++)
            max = lanes[l] > max ? lanes[l] : max;
        int has_nan = _mm_movemask_ps(nan) != 0;
        for (; i < n; i++) {
            has_nan |= x[i] != x[i];
            max = x[i] > max ? x[i] : max;
        }
        if (!has_nan) {
            for (i = 0; i < n; i++) {
                if (x[i] == max)
                    return i;
            }
        }
    }
#endif
    return argmax_scalar(x, n);
}

/* Stable merge sort of ids by probability, descending: equal probabilities keep id order. */
static void sort_desc(int32_t *ids, int32_t *tmp, int n, const float *p)
{
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n;
            int hi = lo + 2 * width < n ? lo + 2 * width : n;
            int a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                tmp[k++] = p[ids[b]] > p[ids[a]] ? ids[b++] : ids[a++];
            while (a < mid)
                tmp[k++] = ids[a++];
            while (b < hi)
                tmp[k++] = ids[b++];
        }
        for (int i = 0; i < n; i++)
            ids[i] = tmp[i];
    }
}

static int sample_topp(struct sampler *s, const float *p, float coin)
{
    int n = s->vocab, count = 0;
    float cutoff = (1.0f - s->topp) / (float)(n - 1);
    for (int i = 0; i < n; i++) {
        if (p[i] >= cutoff)
            s->idx[count++] = i;
    }
    if (count == 0)
        return sample_argmax(p, n);
    sort_desc(s->idx, s->tmp, count, p);
    float cumulative = 0.0f;
    int last = count - 1;
    for (int i = 0; i < count; i++) {
        cumulative += p[s->idx[i]];
        if (cumulative > s->topp) {
            last = i;
            break;
        }
    }
    float r = coin * cumulative;
    float cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += p[s->idx[i]];
        if (r < cdf)
            return s->idx[i];
    }
    return s->idx[last];
}

int sampler_sample(struct sampler *s, float *logits)
{
    if (s->temperature == 0.0f)
        return sample_argmax(logits, s->vocab);
    for (int i = 0; i < s->vocab; i++)
        s->probs[i] = logits[i] / s->temperature;
    softmax(s->probs, s->vocab);
    float coin = rng_next_f32(&s->rng);
    if (s->topp <= 0.0f || s->topp >= 1.0f) {
        float cdf = 0.0f;
        for (int i = 0; i < s->vocab; i++) {
            cdf += s->probs[i];
            if (coin < cdf)
                return i;
        }
        return s->vocab - 1;
    }
    return sample_topp(s, s->probs, coin);
}

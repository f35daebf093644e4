#include "sampler.h"
#include "mathf.h"

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

int sample_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (x[i] > x[best])
            best = i;
    }
    return best;
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

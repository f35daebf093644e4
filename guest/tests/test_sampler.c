#include "bmlib.h"
#include "mathf.h"
#include "sampler.h"
#include "test.h"

static struct sampler make(float temperature, float topp, uint64_t seed, void *block, size_t size)
{
    struct bm_arena arena;
    struct sampler s;
    bm_arena_init(&arena, block, size);
    int r = sampler_init(&s, 4, temperature, topp, seed, &arena);
    CHECK(r == 0);
    return s;
}

void test_sampler(void)
{
    /* Values from MARKERS.md's xorshift* for seed 42, computed independently in Python. */
    struct rng r;
    rng_seed(&r, 42);
    CHECK(rng_next_u32(&r) == 1456360119u);
    CHECK(rng_next_u32(&r) == 3359763283u);
    CHECK(rng_next_u32(&r) == 3393612768u);
    CHECK(rng_next_u32(&r) == 4054632243u);
    CHECK(rng_next_u32(&r) == 3283045847u);
    rng_seed(&r, 42);
    CHECK(rng_next_f32(&r) == (float)(1456360119u >> 8) / 16777216.0f);

    float ties[5] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
    CHECK(sample_argmax(ties, 5) == 1);
    /* the four-lane path: first of equal maxima, max in the tail, -0/+0, a NaN */
    float wide[37];
    for (int i = 0; i < 37; i++)
        wide[i] = (float)((i * 13) % 37) * 0.5f - 3.0f;   /* unique max 15.0 at i = 17 */
    int first_max = 17;
    CHECK(sample_argmax(wide, 37) == first_max);
    wide[30] = 15.0f;
    CHECK(sample_argmax(wide, 37) == first_max);
    wide[36] = 16.0f;
    CHECK(sample_argmax(wide, 37) == 36);
    float zeros[9] = {-1.0f, -0.0f, -2.0f, 0.0f, -3.0f, -1.0f, -1.0f, -1.0f, -1.0f};
    CHECK(sample_argmax(zeros, 9) == 1);
    float nan_first[9] = {__builtin_nanf(""), 1.0f, 5.0f, 2.0f, 5.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    CHECK(sample_argmax(nan_first, 9) == 0);   /* the scalar rule: NaN never replaced */

    static _Alignas(64) unsigned char block[4096];
    float probs[4] = {0.5f, 0.3f, 0.15f, 0.05f};
    float logits[4];

    /* coins for seed 42: 0.339, 0.782, 0.790 */
    struct sampler s = make(1.0f, 0.0f, 42, block, sizeof block);
    for (int i = 0; i < 4; i++)
        logits[i] = (float)bm_log(probs[i]);
    CHECK(sampler_sample(&s, logits) == 0);
    CHECK(sampler_sample(&s, logits) == 1);
    CHECK(sampler_sample(&s, logits) == 1);

    /* top-p 0.7 keeps {0, 1} (sum 0.8): coin 0.339 * 0.8 -> 0, 0.782 * 0.8 = 0.626 -> 1 */
    s = make(1.0f, 0.7f, 42, block, sizeof block);
    CHECK(sampler_sample(&s, logits) == 0);
    CHECK(sampler_sample(&s, logits) == 1);

    /* Equal probabilities sort by id: {1, 2} are the nucleus in that order. */
    float even[4] = {0.1f, 0.4f, 0.4f, 0.1f};
    s = make(1.0f, 0.5f, 42, block, sizeof block);
    CHECK(sampler_sample(&s, even) == 1);
    CHECK(sampler_sample(&s, even) == 2);

    s = make(0.0f, 0.9f, 42, block, sizeof block);
    CHECK(sampler_sample(&s, ties) == -1 + 2);

    float x[3] = {1.0f, 2.0f, 3.0f};
    softmax(x, 3);
    CHECK(x[0] > 0.0900f && x[0] < 0.0901f && x[2] > 0.6652f && x[2] < 0.6653f);
}

/* The RNG and token sampling that MARKERS.md specifies exactly. */
#ifndef BM_SAMPLER_H
#define BM_SAMPLER_H

#include <stdint.h>
#include "bmlib.h"

struct rng {
    uint64_t state;
};
void rng_seed(struct rng *r, uint64_t seed);
uint32_t rng_next_u32(struct rng *r);
float rng_next_f32(struct rng *r);

struct sampler {
    int vocab;
    float temperature;
    float topp;
    struct rng rng;
    float *probs;       /* scratch, vocab entries */
    int32_t *idx;       /* scratch for nucleus sampling, vocab entries */
    int32_t *tmp;       /* merge-sort buffer, vocab entries */
};

size_t sampler_arena_bytes(int vocab);
int sampler_init(struct sampler *s, int vocab, float temperature, float topp, uint64_t seed,
                 struct bm_arena *arena);
/* Logits may be overwritten. */
int sampler_sample(struct sampler *s, float *logits);

int sample_argmax(const float *x, int n);

#endif

/* llama2.c's forward pass with a KV cache. */
#ifndef BM_TRANSFORMER_H
#define BM_TRANSFORMER_H

#include "bmlib.h"
#include "kernels.h"
#include "model.h"

struct transformer {
    const struct model *m;
    const struct kernels *k;
    float *x, *xb, *xb2, *hb, *hb2, *q, *att, *logits;
    float *key_cache, *value_cache;   /* (layers, seq_len, kv_dim) */
    float *rope_cos, *rope_sin;       /* (seq_len, head_size / 2) */
};

size_t transformer_arena_bytes(const struct model *m);
int transformer_init(struct transformer *t, const struct model *m, const struct kernels *k,
                     struct bm_arena *arena);
/* Logits for the token at pos (0 <= pos < seq_len); earlier positions must be filled. */
float *transformer_forward(struct transformer *t, int token, int pos);

#endif

/* llama2.c checkpoints: header, validation against the file size, weight pointers. */
#ifndef BM_MODEL_H
#define BM_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct model_config {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared_classifier;
};

struct model_weights {
    const float *token_embedding;   /* (vocab, dim) */
    const float *rms_att;           /* (layers, dim) */
    const float *wq, *wk, *wv, *wo; /* (layers, out, in) */
    const float *rms_ffn;
    const float *w1, *w2, *w3;
    const float *rms_final;
    const float *wcls;              /* the embedding when shared */
};

struct model {
    struct model_config cfg;
    struct model_weights w;
    uint64_t file_bytes;
    uint64_t params;                /* without the RoPE tables */
};

struct model_error {
    const char *reason;             /* truncated, too_large, bad_header, inconsistent */
    char detail[128];
};

/* Validates data (the whole file, 4-byte aligned) and points the weights into it. */
int model_load(struct model *m, const uint8_t *data, size_t size, struct model_error *err);
void model_print(const struct model *m, const char *file);

#endif

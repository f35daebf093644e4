#include "model.h"
#include "bmlib.h"
#include "out.h"

#define HEADER_BYTES 28
/* Per-field limits keep the size arithmetic below 2^50 (no overflow). */
static const int32_t field_limit[7] = {
    1 << 16, 1 << 18, 1 << 10, 1 << 12, 1 << 12, 1 << 20, 1 << 20,
};

static int fail(struct model_error *err, const char *reason, const char *text,
                uint64_t a, uint64_t b)
{
    size_t n = 0;
    err->reason = reason;
    for (const char *s = text; *s && n < 60; s++)
        err->detail[n++] = *s;
    err->detail[n++] = ' ';
    n += fmt_u64(err->detail + n, a);
    err->detail[n++] = ' ';
    err->detail[n++] = 'v';
    err->detail[n++] = 's';
    err->detail[n++] = ' ';
    n += fmt_u64(err->detail + n, b);
    err->detail[n] = 0;
    return -1;
}

int model_load(struct model *m, const uint8_t *data, size_t size, struct model_error *err)
{
    struct model_config *c = &m->cfg;
    if (size < HEADER_BYTES)
        return fail(err, "truncated", "file bytes vs header bytes", size, HEADER_BYTES);
    int32_t h[7];
    for (int i = 0; i < 7; i++)
        h[i] = bm_read_i32(data + 4 * i);
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->shared_classifier = h[5] > 0;
    c->vocab_size = h[5] < 0 ? -h[5] : h[5];
    c->seq_len = h[6];
    for (int i = 0; i < 7; i++) {
        int32_t v = h[i] == INT32_MIN ? 0 : (h[i] < 0 && i == 5 ? -h[i] : h[i]);
        if (v <= 0 || v > field_limit[i])
            return fail(err, "bad_header", "header field index and value", (uint64_t)i,
                        v < 0 ? 0 : (uint64_t)v);
    }
    if (c->dim % c->n_heads)
        return fail(err, "inconsistent", "dim vs heads", (uint64_t)c->dim, (uint64_t)c->n_heads);
    int head_size = c->dim / c->n_heads;
    if (head_size % 2)
        return fail(err, "inconsistent", "odd head size vs 2", (uint64_t)head_size, 2);
    if (c->n_heads % c->n_kv_heads)
        return fail(err, "inconsistent", "heads vs kv_heads", (uint64_t)c->n_heads,
                    (uint64_t)c->n_kv_heads);

    uint64_t d = (uint64_t)c->dim, hd = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers;
    uint64_t kv = (uint64_t)head_size * (uint64_t)c->n_kv_heads, V = (uint64_t)c->vocab_size;
    uint64_t rope = (uint64_t)c->seq_len * (uint64_t)head_size; /* real + imag halves */
    uint64_t floats = V * d + L * d + L * d * d + 2 * L * kv * d + L * d * d + L * d +
                      3 * L * hd * d + d;
    uint64_t params = floats + (c->shared_classifier ? 0 : V * d);
    floats = params + rope;
    uint64_t expected = HEADER_BYTES + 4 * floats;
    if (size < expected)
        return fail(err, "truncated", "file bytes vs header-implied bytes", size, expected);
    if (size > expected)
        return fail(err, "too_large", "file bytes vs header-implied bytes", size, expected);

    const float *p = (const float *)(const void *)(data + HEADER_BYTES);
    struct model_weights *w = &m->w;
    w->token_embedding = p;  p += V * d;
    w->rms_att = p;          p += L * d;
    w->wq = p;               p += L * d * d;
    w->wk = p;               p += L * kv * d;
    w->wv = p;               p += L * kv * d;
    w->wo = p;               p += L * d * d;
    w->rms_ffn = p;          p += L * d;
    w->w1 = p;               p += L * hd * d;
    w->w2 = p;               p += L * hd * d;
    w->w3 = p;               p += L * hd * d;
    w->rms_final = p;        p += d;
    p += rope;
    w->wcls = c->shared_classifier ? w->token_embedding : p;
    m->file_bytes = size;
    m->params = params;
    return 0;
}

void model_print(const struct model *m, const char *file)
{
    const struct model_config *c = &m->cfg;
    out_str("[model]");
    out_kv_str("file", file);
    out_kv_u64("bytes", m->file_bytes);
    out_kv_u64("dim", (uint64_t)c->dim);
    out_kv_u64("hidden_dim", (uint64_t)c->hidden_dim);
    out_kv_u64("layers", (uint64_t)c->n_layers);
    out_kv_u64("heads", (uint64_t)c->n_heads);
    out_kv_u64("kv_heads", (uint64_t)c->n_kv_heads);
    out_kv_u64("vocab", (uint64_t)c->vocab_size);
    out_kv_u64("seq_len", (uint64_t)c->seq_len);
    out_kv_u64("shared_classifier", (uint64_t)c->shared_classifier);
    out_kv_u64("params", m->params);
    out_end();
}

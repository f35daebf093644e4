#include "transformer.h"
#include "mathf.h"

static size_t floats(size_t n)
{
    return bm_arena_need(n * sizeof(float));
}

size_t transformer_arena_bytes(const struct model *m)
{
    const struct model_config *c = &m->cfg;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim, seq = (size_t)c->seq_len;
    size_t head = dim / (size_t)c->n_heads;
    size_t kv_dim = head * (size_t)c->n_kv_heads;
    size_t cache = (size_t)c->n_layers * seq * kv_dim;
    return 4 * floats(dim) + 2 * floats(hidden) + floats((size_t)c->n_heads * seq) +
           floats((size_t)c->vocab_size) + 2 * floats(cache) + 2 * floats(seq * head / 2);
}

int transformer_init(struct transformer *t, const struct model *m, const struct kernels *k,
                     struct bm_arena *arena)
{
    const struct model_config *c = &m->cfg;
    size_t dim = (size_t)c->dim, hidden = (size_t)c->hidden_dim, seq = (size_t)c->seq_len;
    size_t head = dim / (size_t)c->n_heads;
    size_t cache = (size_t)c->n_layers * seq * head * (size_t)c->n_kv_heads;
    t->m = m;
    t->k = k;
    t->x = bm_arena_take(arena, dim * sizeof(float));
    t->xb = bm_arena_take(arena, dim * sizeof(float));
    t->xb2 = bm_arena_take(arena, dim * sizeof(float));
    t->q = bm_arena_take(arena, dim * sizeof(float));
    t->hb = bm_arena_take(arena, hidden * sizeof(float));
    t->hb2 = bm_arena_take(arena, hidden * sizeof(float));
    t->att = bm_arena_take(arena, (size_t)c->n_heads * seq * sizeof(float));
    t->logits = bm_arena_take(arena, (size_t)c->vocab_size * sizeof(float));
    t->key_cache = bm_arena_take(arena, cache * sizeof(float));
    t->value_cache = bm_arena_take(arena, cache * sizeof(float));
    t->rope_cos = bm_arena_take(arena, seq * head / 2 * sizeof(float));
    t->rope_sin = bm_arena_take(arena, seq * head / 2 * sizeof(float));
    if (!t->x || !t->xb || !t->xb2 || !t->q || !t->hb || !t->hb2 || !t->att || !t->logits ||
        !t->key_cache || !t->value_cache || !t->rope_cos || !t->rope_sin)
        return -1;
    /* freq = 10000^(-(2i)/head_size) for the pair (2i, 2i+1) of each head. */
    size_t half = head / 2;
    for (size_t i = 0; i < half; i++) {
        double freq = bm_pow(10000.0, -(double)(2 * i) / (double)head);
        for (size_t pos = 0; pos < seq; pos++) {
            double angle = (double)pos * freq;
            t->rope_cos[pos * half + i] = (float)bm_cos(angle);
            t->rope_sin[pos * half + i] = (float)bm_sin(angle);
        }
    }
    return 0;
}

static void rmsnorm(float *out, const float *x, const float *w, int n)
{
    float ss = 0.0f;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    ss = ss / (float)n + 1e-5f;
    ss = 1.0f / bm_sqrtf(ss);
    for (int i = 0; i < n; i++)
        out[i] = w[i] * (ss * x[i]);
}

static void rotate(float *v, const float *cosv, const float *sinv, int head, int n)
{
    for (int i = 0; i < n; i += 2) {
        int j = (i % head) / 2;
        float c = cosv[j], s = sinv[j];
        float a = v[i], b = v[i + 1];
        v[i] = a * c - b * s;
        v[i + 1] = a * s + b * c;
    }
}

float *transformer_forward(struct transformer *t, int token, int pos)
{
    const struct model_config *c = &t->m->cfg;
    const struct model_weights *w = &t->m->w;
    const struct kernels *k = t->k;
    int dim = c->dim, hidden = c->hidden_dim, seq = c->seq_len;
    int head = dim / c->n_heads;
    int kv_dim = head * c->n_kv_heads;
    int kv_mul = c->n_heads / c->n_kv_heads;
    float scale = 1.0f / bm_sqrtf((float)head);
    const float *cosv = t->rope_cos + (size_t)pos * (size_t)(head / 2);
    const float *sinv = t->rope_sin + (size_t)pos * (size_t)(head / 2);

    bm_memcpy(t->x, w->token_embedding + (size_t)token * (size_t)dim, (size_t)dim * sizeof(float));

    for (int l = 0; l < c->n_layers; l++) {
        size_t L = (size_t)l;
        float *kc = t->key_cache + L * (size_t)seq * (size_t)kv_dim;
        float *vc = t->value_cache + L * (size_t)seq * (size_t)kv_dim;
        float *kpos = kc + (size_t)pos * (size_t)kv_dim;
        float *vpos = vc + (size_t)pos * (size_t)kv_dim;

        rmsnorm(t->xb, t->x, w->rms_att + L * (size_t)dim, dim);
        k->matmul(t->q, t->xb, w->wq + L * (size_t)dim * (size_t)dim, dim, dim);
        k->matmul(kpos, t->xb, w->wk + L * (size_t)kv_dim * (size_t)dim, dim, kv_dim);
        k->matmul(vpos, t->xb, w->wv + L * (size_t)kv_dim * (size_t)dim, dim, kv_dim);
        rotate(t->q, cosv, sinv, head, dim);
        rotate(kpos, cosv, sinv, head, kv_dim);

        for (int h = 0; h < c->n_heads; h++) {
            const float *qh = t->q + h * head;
            float *att = t->att + (size_t)h * (size_t)seq;
            size_t kv_off = (size_t)(h / kv_mul) * (size_t)head;
            if (k->scores) {
                k->scores(att, qh, kc + kv_off, kv_dim, pos + 1, head, scale);
            } else {
                for (int p = 0; p <= pos; p++)
                    att[p] = k->dot(qh, kc + (size_t)p * (size_t)kv_dim + kv_off, head) * scale;
            }
            softmax(att, pos + 1);
            float *out = t->xb + h * head;
            if (k->mix) {
                k->mix(out, att, vc + kv_off, kv_dim, pos + 1, head);
            } else {
                bm_memset(out, 0, (size_t)head * sizeof(float));
                for (int p = 0; p <= pos; p++)
                    k->axpy(out, att[p], vc + (size_t)p * (size_t)kv_dim + kv_off, head);
            }
        }

        k->matmul(t->xb2, t->xb, w->wo + L * (size_t)dim * (size_t)dim, dim, dim);
        for (int i = 0; i < dim; i++)
            t->x[i] += t->xb2[i];

        rmsnorm(t->xb, t->x, w->rms_ffn + L * (size_t)dim, dim);
        k->matmul(t->hb, t->xb, w->w1 + L * (size_t)hidden * (size_t)dim, dim, hidden);
        k->matmul(t->hb2, t->xb, w->w3 + L * (size_t)hidden * (size_t)dim, dim, hidden);
        silu_mul(t->hb, t->hb2, hidden);
        k->matmul(t->xb, t->hb, w->w2 + L * (size_t)dim * (size_t)hidden, hidden, dim);
        for (int i = 0; i < dim; i++)
            t->x[i] += t->xb[i];
    }

    rmsnorm(t->x, t->x, w->rms_final, dim);
    k->matmul(t->logits, t->x, w->wcls, dim, c->vocab_size);
    return t->logits;
}

#include "tokenizer.h"
#include "out.h"

static void set_error(struct tok_error *err, const char *reason, const char *text, uint64_t v)
{
    size_t n = 0;
    err->reason = reason;
    for (const char *s = text; *s && n < 70; s++)
        err->detail[n++] = *s;
    err->detail[n++] = ' ';
    n += fmt_u64(err->detail + n, v);
    err->detail[n] = 0;
}

int tokenizer_check(struct tokenizer *t, const uint8_t *data, size_t size, int vocab,
                    struct tok_error *err)
{
    bm_memset(t, 0, sizeof *t);
    if (size < 4) {
        set_error(err, "truncated", "file bytes", size);
        return -1;
    }
    int32_t max_len = bm_read_i32(data);
    if (max_len <= 0 || max_len > 4096) {
        set_error(err, "bad_header", "max_token_length", max_len < 0 ? 0 : (uint64_t)max_len);
        return -1;
    }
    size_t pos = 4;
    for (int i = 0; i < vocab; i++) {
        if (size - pos < 8) {
            set_error(err, "truncated", "file ends at token", (uint64_t)i);
            return -1;
        }
        int32_t len = bm_read_i32(data + pos + 4);
        pos += 8;
        if (len < 0 || len > max_len) {
            set_error(err, "bad_header", "bad piece length at token", (uint64_t)i);
            return -1;
        }
        if (size - pos < (size_t)len) {
            set_error(err, "truncated", "file ends in token", (uint64_t)i);
            return -1;
        }
        pos += (size_t)len;
    }
    t->vocab = vocab;
    t->max_len = max_len;
    t->file_bytes = size;
    t->data = data;
    return 0;
}

static uint32_t table_size(int vocab)
{
    uint32_t n = 1;
    while (n < 2u * (uint32_t)vocab)
        n <<= 1;
    return n;
}

size_t tokenizer_arena_bytes(const struct tokenizer *t)
{
    size_t v = (size_t)t->vocab;
    return bm_arena_need(v * sizeof(uint8_t *)) + bm_arena_need(v * sizeof(int32_t)) +
           bm_arena_need(v * sizeof(float)) +
           bm_arena_need(table_size(t->vocab) * sizeof(int32_t)) +
           bm_arena_need(2 * (size_t)t->max_len + 8);
}

static uint32_t hash(const uint8_t *bytes, size_t len)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ bytes[i]) * 16777619u;
    return h;
}

int tokenizer_lookup(const struct tokenizer *t, const uint8_t *bytes, size_t len)
{
    uint32_t i = hash(bytes, len) & t->mask;
    for (;;) {
        int32_t slot = t->slots[i];
        if (slot == 0)
            return -1;
        int id = slot - 1;
        if ((size_t)t->lens[id] == len && bm_memcmp(t->pieces[id], bytes, len) == 0)
            return id;
        i = (i + 1) & t->mask;
    }
}

int tokenizer_build(struct tokenizer *t, struct bm_arena *arena)
{
    size_t v = (size_t)t->vocab;
    uint32_t size = table_size(t->vocab);
    t->pieces = bm_arena_take(arena, v * sizeof(uint8_t *));
    t->lens = bm_arena_take(arena, v * sizeof(int32_t));
    t->scores = bm_arena_take(arena, v * sizeof(float));
    t->slots = bm_arena_take(arena, size * sizeof(int32_t));
    t->scratch = bm_arena_take(arena, 2 * (size_t)t->max_len + 8);
    if (!t->pieces || !t->lens || !t->scores || !t->slots || !t->scratch)
        return -1;
    t->mask = size - 1;
    bm_memset(t->slots, 0, size * sizeof(int32_t));
    size_t pos = 4;
    for (int id = 0; id < t->vocab; id++) {
        t->scores[id] = bm_read_f32(t->data + pos);
        t->lens[id] = bm_read_i32(t->data + pos + 4);
        t->pieces[id] = t->data + pos + 8;
        pos += 8 + (size_t)t->lens[id];
        if (tokenizer_lookup(t, t->pieces[id], (size_t)t->lens[id]) >= 0)
            continue;
        uint32_t i = hash(t->pieces[id], (size_t)t->lens[id]) & t->mask;
        while (t->slots[i])
            i = (i + 1) & t->mask;
        t->slots[i] = id + 1;
    }
    return 0;
}

void tokenizer_print(const struct tokenizer *t, const char *file)
{
    out_str("[tokenizer]");
    out_kv_str("file", file);
    out_kv_u64("bytes", t->file_bytes);
    out_kv_u64("vocab", (uint64_t)t->vocab);
    out_kv_u64("max_token_len", (uint64_t)t->max_len);
    out_end();
}

size_t tokenizer_max_ids(size_t text_len)
{
    return text_len + 2;
}

size_t tokenizer_encode(const struct tokenizer *t, const char *text, int32_t *ids)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t n = 0;
    ids[n++] = TOKEN_BOS;
    if (s[0]) {
        int space = tokenizer_lookup(t, (const uint8_t *)" ", 1);
        if (space >= 0)
            ids[n++] = space;
    }
    /* Split into code points: a lead byte plus up to three continuation bytes. */
    size_t i = 0;
    while (s[i]) {
        size_t len = 1;
        while (s[i + len] && (s[i + len] & 0xc0) == 0x80 && len < 4)
            len++;
        int id = tokenizer_lookup(t, s + i, len);
        if (id >= 0) {
            ids[n++] = id;
        } else {
            /* <unk> stands in for a byte token a (tiny) vocabulary lacks. */
            for (size_t k = 0; k < len; k++) {
                int32_t b = (int32_t)s[i + k] + 3;
                ids[n++] = b < t->vocab ? b : 0;
            }
        }
        i += len;
    }
    /* Merge the best-scoring adjacent pair (leftmost on ties) until none merges. */
    for (;;) {
        int best_id = -1;
        size_t best_at = 0;
        float best_score = 0.0f;
        for (size_t k = 0; k + 1 < n; k++) {
            size_t la = (size_t)t->lens[ids[k]], lb = (size_t)t->lens[ids[k + 1]];
            bm_memcpy(t->scratch, t->pieces[ids[k]], la);
            bm_memcpy(t->scratch + la, t->pieces[ids[k + 1]], lb);
            int id = tokenizer_lookup(t, t->scratch, la + lb);
            if (id >= 0 && (best_id < 0 || t->scores[id] > best_score)) {
                best_id = id;
                best_score = t->scores[id];
                best_at = k;
            }
        }
        if (best_id < 0)
            break;
        ids[best_at] = best_id;
        for (size_t k = best_at + 1; k + 1 < n; k++)
            ids[k] = ids[k + 1];
        n--;
    }
    return n;
}

static int hex_digit(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

const uint8_t *tokenizer_decode(struct tokenizer *t, int prev, int id, size_t *len)
{
    const uint8_t *p = t->pieces[id];
    size_t n = (size_t)t->lens[id];
    if (prev == TOKEN_BOS && n > 0 && p[0] == ' ') {
        p++;
        n--;
    }
    if (n == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x' && p[5] == '>') {
        int hi = hex_digit(p[3]), lo = hex_digit(p[4]);
        if (hi >= 0 && lo >= 0) {
            t->byte = (uint8_t)(hi * 16 + lo);
            *len = 1;
            return &t->byte;
        }
    }
    *len = n;
    return p;
}

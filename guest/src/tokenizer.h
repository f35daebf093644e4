/* llama2.c tokenizer.bin: loading, BPE encoding with byte fallback, piece decoding. */
#ifndef BM_TOKENIZER_H
#define BM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "bmlib.h"

#define TOKEN_BOS 1
#define TOKEN_EOS 2

struct tokenizer {
    int vocab;
    int max_len;
    size_t file_bytes;
    const uint8_t *data;
    const uint8_t **pieces;   /* into data */
    int32_t *lens;
    float *scores;
    int32_t *slots;           /* hash of pieces: id + 1, 0 when empty */
    uint32_t mask;
    uint8_t *scratch;         /* 2 * max_len bytes for pair concatenation */
    uint8_t byte;             /* decode of a <0xHH> piece */
};

struct tok_error {
    const char *reason;       /* truncated, bad_header */
    char detail[96];
};

/* Checks the file for `vocab` tokens (no allocation). */
int tokenizer_check(struct tokenizer *t, const uint8_t *data, size_t size, int vocab,
                    struct tok_error *err);
/* Arena bytes tokenizer_build will take. */
size_t tokenizer_arena_bytes(const struct tokenizer *t);
int tokenizer_build(struct tokenizer *t, struct bm_arena *arena);
void tokenizer_print(const struct tokenizer *t, const char *file);

/* Id of the piece, or -1. When a piece repeats, the lowest id. */
int tokenizer_lookup(const struct tokenizer *t, const uint8_t *bytes, size_t len);
/* Largest id count tokenizer_encode can produce for text of len bytes. */
size_t tokenizer_max_ids(size_t text_len);
/* BOS, dummy prefix, code points / byte fallback, best-score merges (MARKERS.md). */
size_t tokenizer_encode(const struct tokenizer *t, const char *text, int32_t *ids);
/* Bytes to print for id following prev. */
const uint8_t *tokenizer_decode(struct tokenizer *t, int prev, int id, size_t *len);

#endif

#include <stdlib.h>
#include <string.h>
#include "bmlib.h"
#include "tokenizer.h"
#include "test.h"

/* Fixture ids: 259 + (c - 32) for printable ASCII c; merges from 354 (make_fixtures.py). */
#define CH(c) (259 + ((c) - 32))

static int encodes_to(const struct tokenizer *t, const char *text, const int32_t *want, size_t n)
{
    int32_t ids[64];
    size_t got = tokenizer_encode(t, text, ids);
    return got == n && memcmp(ids, want, n * sizeof(int32_t)) == 0;
}

void test_tokenizer(void)
{
    unsigned char *data;
    unsigned long size;
    struct tokenizer t;
    struct tok_error err;
    CHECK(test_read("tokenizer.bin", &data, &size) == 0);
    CHECK(tokenizer_check(&t, data, size, 380, &err) == 0);
    CHECK(t.max_len == 6 && t.vocab == 380);
    CHECK(tokenizer_check(&t, data, 50, 380, &err) == -1 && strcmp(err.reason, "truncated") == 0);
    CHECK(tokenizer_check(&t, data, 3, 380, &err) == -1 && strcmp(err.reason, "truncated") == 0);
    CHECK(tokenizer_check(&t, data, size, 381, &err) == -1);

    CHECK(tokenizer_check(&t, data, size, 380, &err) == 0);
    size_t bytes = tokenizer_arena_bytes(&t);
    void *block = aligned_alloc(64, bytes);
    struct bm_arena arena;
    bm_arena_init(&arena, block, bytes);
    CHECK(tokenizer_build(&t, &arena) == 0);
    CHECK(arena.used == bytes);

    CHECK(tokenizer_lookup(&t, (const uint8_t *)" the", 4) == 358);
    CHECK(tokenizer_lookup(&t, (const uint8_t *)"x", 1) == CH('x'));
    CHECK(tokenizer_lookup(&t, (const uint8_t *)"xyz", 3) == -1);

    int32_t empty[] = {1};
    CHECK(encodes_to(&t, "", empty, 1));
    /* he (2.00) first, then the (2.98), then " the" (3.96) */
    int32_t the[] = {1, 358};
    CHECK(encodes_to(&t, "the", the, 2));
    /* " t" (1.97) beats "ti" (1.81), so " time" is never reached */
    int32_t once[] = {1, 259, 367, 372, 363, 357, CH('i'), 374};
    CHECK(encodes_to(&t, "Once upon a time", once, 8));
    int32_t control[] = {1, 259, 1 + 3};
    CHECK(encodes_to(&t, "\x01", control, 3));
    int32_t e_acute[] = {1, 259, 379};
    CHECK(encodes_to(&t, "\xc3\xa9", e_acute, 3));
    int32_t u_umlaut[] = {1, 259, 0xc3 + 3, 0xbc + 3};
    CHECK(encodes_to(&t, "\xc3\xbc", u_umlaut, 4));
    CHECK(tokenizer_max_ids(4) >= 6);

    size_t len;
    const uint8_t *p = tokenizer_decode(&t, TOKEN_BOS, 358, &len);
    CHECK(len == 3 && memcmp(p, "the", 3) == 0);
    p = tokenizer_decode(&t, 300, 358, &len);
    CHECK(len == 4 && memcmp(p, " the", 4) == 0);
    p = tokenizer_decode(&t, 300, 3 + 0x0a, &len);
    CHECK(len == 1 && p[0] == '\n');
    p = tokenizer_decode(&t, 300, 3 + 0xe9, &len);
    CHECK(len == 1 && p[0] == 0xe9);
    free(block);
    free(data);
}

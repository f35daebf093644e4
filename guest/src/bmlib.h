/* Memory and string helpers: the core links no libc. */
#ifndef BM_LIB_H
#define BM_LIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

void bm_memcpy(void *dst, const void *src, size_t n);
void bm_memset(void *dst, int value, size_t n);
int bm_memcmp(const void *a, const void *b, size_t n);
size_t bm_strlen(const char *s);
bool bm_streq(const char *a, const char *b);
/* Copies at most cap-1 bytes and always NUL-terminates; returns false when truncated. */
bool bm_strlcpy(char *dst, const char *src, size_t cap);

/* Little-endian reads from possibly unaligned bytes. */
int32_t bm_read_i32(const uint8_t *p);
float bm_read_f32(const uint8_t *p);

/* A bump allocator over one block (the run state). */
struct bm_arena {
    uint8_t *base;
    size_t size;
    size_t used;
};
void bm_arena_init(struct bm_arena *arena, void *base, size_t size);
/* 64-byte aligned, zeroed by the platform; NULL when the block is exhausted. */
void *bm_arena_take(struct bm_arena *arena, size_t bytes);
/* What bm_arena_take will consume for a request (its rounding). */
size_t bm_arena_need(size_t bytes);

#endif

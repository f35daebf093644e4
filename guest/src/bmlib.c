#include "bmlib.h"

void bm_memcpy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
}

void bm_memset(void *dst, int value, size_t n)
{
    uint8_t *d = dst;
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)value;
}

int bm_memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a;
    const uint8_t *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    }
    return 0;
}

size_t bm_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

bool bm_streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

bool bm_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t i = 0;
    if (cap == 0)
        return false;
    while (src[i] && i + 1 < cap) {
        dst[i] = src[i];
        i++;
    }
    dst[i] = 0;
    return src[i] == 0;
}

int32_t bm_read_i32(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return (int32_t)v;
}

float bm_read_f32(const uint8_t *p)
{
    uint32_t v = (uint32_t)bm_read_i32(p);
    float f;
    bm_memcpy(&f, &v, sizeof f);
    return f;
}

void bm_arena_init(struct bm_arena *arena, void *base, size_t size)
{
    arena->base = base;
    arena->size = size;
    arena->used = 0;
}

size_t bm_arena_need(size_t bytes)
{
    return (bytes + 63) & ~(size_t)63;
}

void *bm_arena_take(struct bm_arena *arena, size_t bytes)
{
    size_t need = bm_arena_need(bytes);
    if (need < bytes || need > arena->size - arena->used)
        return NULL;
    void *p = arena->base + arena->used;
    arena->used += need;
    return p;
}

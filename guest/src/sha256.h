/* SHA-256 (FIPS 180-4): the sha256 benchmark module and the digest of downloaded files. */
#ifndef BM_SHA256_H
#define BM_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Incremental form: init, any number of updates, final. */
struct sha256_ctx {
    uint32_t h[8];
    uint64_t total;      /* bytes so far */
    uint8_t buf[64];     /* a partial block */
    size_t used;
};

void sha256_init(struct sha256_ctx *ctx);
void sha256_update(struct sha256_ctx *ctx, const uint8_t *data, size_t len);
void sha256_final(struct sha256_ctx *ctx, uint8_t digest[32]);

/* One call over a whole buffer. */
void sha256(const uint8_t *data, size_t len, uint8_t digest[32]);

#endif

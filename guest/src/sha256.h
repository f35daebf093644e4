/* SHA-256 (FIPS 180-4), for the sha256 benchmark module. */
#ifndef BM_SHA256_H
#define BM_SHA256_H

#include <stddef.h>
#include <stdint.h>

void sha256(const uint8_t *data, size_t len, uint8_t digest[32]);

#endif

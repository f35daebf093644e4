/* Console line formatting: tags, key=value fields, numbers, quoted strings.
 * Text accumulates in a small buffer and goes to plat_write when full or at out_end. */
#ifndef BM_OUT_H
#define BM_OUT_H

#include <stddef.h>
#include <stdint.h>

void out_raw(const char *bytes, size_t len);
void out_str(const char *s);
void out_u64(uint64_t v);
void out_i64(int64_t v);
void out_hex(uint64_t v);                  /* 0x1f: lowercase, no padding */
void out_fixed(double v, int decimals);    /* rounded; non-finite prints 0 */
void out_quoted(const char *s);            /* "..." with \" and \\ escaped */
void out_flush(void);
void out_end(void);                        /* "\r\n" and flush */

/* " key=value" field helpers (a leading space, so lines read "[tag] a=1 b=2"). */
void out_kv_str(const char *key, const char *value);
void out_kv_u64(const char *key, uint64_t v);
void out_kv_i64(const char *key, int64_t v);
void out_kv_hex(const char *key, uint64_t v);
void out_kv_fixed(const char *key, double v, int decimals);
void out_kv_quoted(const char *key, const char *value);

/* [error] where=... file=... reason=... detail="..." */
void out_error(const char *where, const char *file, const char *reason, const char *detail);

/* Formats into a caller buffer (for details, tests); returns the length written. */
size_t fmt_u64(char *buf, uint64_t v);
size_t fmt_fixed(char *buf, size_t cap, double v, int decimals);

#endif

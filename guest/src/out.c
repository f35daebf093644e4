#include "out.h"
#include "bmlib.h"
#include "platform.h"

static char buffer[256];
static size_t used;

void out_flush(void)
{
    if (used) {
        plat_write(buffer, used);
        used = 0;
    }
}

void out_raw(const char *bytes, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (used == sizeof buffer)
            out_flush();
        buffer[used++] = bytes[i];
    }
}

void out_str(const char *s)
{
    out_raw(s, bm_strlen(s));
}

size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

void out_u64(uint64_t v)
{
    char buf[20];
    out_raw(buf, fmt_u64(buf, v));
}

void out_i64(int64_t v)
{
    if (v < 0) {
        out_raw("-", 1);
        out_u64((uint64_t)0 - (uint64_t)v);
    } else {
        out_u64((uint64_t)v);
    }
}

void out_hex(uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    out_raw("0x", 2);
    while (n)
        out_raw(&tmp[--n], 1);
}

size_t fmt_fixed(char *buf, size_t cap, double v, int decimals)
{
    char tmp[48];
    size_t n = 0;
    uint64_t scale = 1;
    if (decimals < 0)
        decimals = 0;
    if (decimals > 9)
        decimals = 9;
    for (int i = 0; i < decimals; i++)
        scale *= 10;
    /* NaN, inf and values beyond 2^63 / scale are not printable as promised: clamp. */
    if (!(v == v))
        v = 0.0;
    bool negative = v < 0;
    if (negative)
        v = -v;
    double limit = 9.0e18 / (double)scale;
    if (v > limit)
        v = limit;
    uint64_t units = (uint64_t)(v * (double)scale + 0.5);
    if (units == 0)
        negative = false;
    if (negative)
        tmp[n++] = '-';
    n += fmt_u64(tmp + n, units / scale);
    if (decimals) {
        tmp[n++] = '.';
        uint64_t frac = units % scale;
        for (int i = decimals - 1; i >= 0; i--) {
            tmp[n + (size_t)i] = (char)('0' + frac % 10);
            frac /= 10;
        }
        n += (size_t)decimals;
    }
    if (n >= cap)
        n = cap ? cap - 1 : 0;
    bm_memcpy(buf, tmp, n);
    if (cap)
        buf[n] = 0;
    return n;
}

void out_fixed(double v, int decimals)
{
    char buf[48];
    out_raw(buf, fmt_fixed(buf, sizeof buf, v, decimals));
}

void out_quoted(const char *s)
{
    out_raw("\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            out_raw("\\", 1);
        out_raw(s, 1);
    }
    out_raw("\"", 1);
}

void out_end(void)
{
    out_raw("\r\n", 2);
    out_flush();
}

static void key(const char *k)
{
    out_raw(" ", 1);
    out_str(k);
    out_raw("=", 1);
}

void out_kv_str(const char *k, const char *value)
{
    key(k);
    out_str(value);
}

void out_kv_u64(const char *k, uint64_t v)
{
    key(k);
    out_u64(v);
}

void out_kv_i64(const char *k, int64_t v)
{
    key(k);
    out_i64(v);
}

void out_kv_hex(const char *k, uint64_t v)
{
    key(k);
    out_hex(v);
}

void out_kv_fixed(const char *k, double v, int decimals)
{
    key(k);
    out_fixed(v, decimals);
}

void out_kv_quoted(const char *k, const char *value)
{
    key(k);
    out_quoted(value);
}

void out_error(const char *where, const char *file, const char *reason, const char *detail)
{
    out_str("[error]");
    out_kv_str("where", where);
    out_kv_str("file", file ? file : "-");
    out_kv_str("reason", reason);
    out_kv_quoted("detail", detail ? detail : "");
    out_end();
}

#include "config.h"
#include "bmlib.h"
#include "out.h"

void config_defaults(struct config *cfg)
{
    bm_memset(cfg, 0, sizeof *cfg);
    bm_strlcpy(cfg->model, "model.bin", sizeof cfg->model);
    bm_strlcpy(cfg->tokenizer, "tokenizer.bin", sizeof cfg->tokenizer);
    bm_strlcpy(cfg->prompt, "Once upon a time", sizeof cfg->prompt);
    cfg->steps = 64;
    cfg->seed = 42;
    cfg->temperature = 0.0f;
    cfg->topp = 0.9f;
    cfg->repeats = 3;
    cfg->kernel = KERNEL_AUTO;
    cfg->bench = 1;
    cfg->bench_runs = 5;
    cfg->slowdown_pct = 0.0f;
    cfg->shutdown = 1;
    cfg->net_timeout_ms = 5000;
}

const char *config_kernel_name(enum cfg_kernel kernel)
{
    switch (kernel) {
    case KERNEL_AVX2: return "avx2";
    case KERNEL_PORTABLE: return "portable";
    case KERNEL_AVX2_128: return "avx2-128";
    default: return "auto";
    }
}

/* A detail like: line 3: key "x" ... built without snprintf. */
static void detail(struct cfg_error *err, const char *reason, unsigned line,
                   const char *what, const char *item)
{
    char *d = err->detail;
    size_t cap = sizeof err->detail, n = 0;
    char num[20];
    size_t k = fmt_u64(num, line);
    const char *parts[] = {"line ", NULL, ": ", what, item ? " " : "", item ? item : ""};
    err->reason = reason;
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        const char *s = parts[p];
        size_t len = s ? bm_strlen(s) : k;
        if (!s)
            s = num;
        for (size_t i = 0; i < len && n + 1 < cap; i++)
            d[n++] = s[i];
    }
    d[n] = 0;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        uint64_t digit = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* Decimal real: [-]digits[.digits][e[+-]digits], as Python's repr writes them. */
static int parse_real(const char *s, double *out)
{
    double v = 0.0, scale = 1.0;
    int sign = 1, digits = 0;
    if (*s == '-' || *s == '+')
        sign = *s++ == '-' ? -1 : 1;
    for (; *s >= '0' && *s <= '9'; s++, digits++)
        v = v * 10.0 + (*s - '0');
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
            scale /= 10.0;
            v += (*s - '0') * scale;
        }
    }
    if (!digits)
        return -1;
    if (*s == 'e' || *s == 'E') {
        int esign = 1, e = 0, edigits = 0;
        s++;
        if (*s == '-' || *s == '+')
            esign = *s++ == '-' ? -1 : 1;
        for (; *s >= '0' && *s <= '9' && e < 400; s++, edigits++)
            e = e * 10 + (*s - '0');
        if (!edigits || e > 38)
            return -1;
        for (int i = 0; i < e; i++)
            v = esign > 0 ? v * 10.0 : v / 10.0;
    }
    if (*s)
        return -1;
    *out = sign * v;
    return 0;
}

static int parse_real_range(const char *s, double lo, double hi, float *out)
{
    double v;
    if (parse_real(s, &v) < 0 || v < lo || v > hi)
        return -1;
    *out = (float)v;
    return 0;
}

static int parse_u32_range(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v;
    if (parse_u64(s, hi, &v) < 0 || v < lo)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_flag(const char *s, int *out)
{
    if (bm_streq(s, "0") || bm_streq(s, "1")) {
        *out = s[0] - '0';
        return 0;
    }
    return -1;
}

static int parse_name(const char *s, char *dst, size_t cap)
{
    if (!*s)
        return -1;
    return bm_strlcpy(dst, s, cap) ? 0 : -1;
}

/* An http:// URL (checked in full when used), or empty for none. */
static int parse_url(const char *s, char *dst, size_t cap)
{
    const char *scheme = "http://";
    if (!*s) {
        dst[0] = 0;
        return 0;
    }
    for (size_t i = 0; scheme[i]; i++)
        if (s[i] != scheme[i])
            return -1;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return -1;
    return bm_strlcpy(dst, s, cap) ? 0 : -1;
}

/* 64 hex digits, stored lowercase; empty for none. */
static int parse_sha256(const char *s, char *dst)
{
    size_t n = bm_strlen(s);
    if (n == 0) {
        dst[0] = 0;
        return 0;
    }
    if (n != CFG_SHA256_HEX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        dst[i] = c;
    }
    dst[n] = 0;
    return 0;
}

/* Returns 1 when the key is unknown, -1 for a bad value, 0 when applied. */
static int apply(struct config *cfg, const char *key, const char *value)
{
    uint64_t u;
    if (bm_streq(key, "mode")) {
        if (bm_streq(value, "script"))
            cfg->repl = 0;
        else if (bm_streq(value, "repl"))
            cfg->repl = 1;
        else
            return -1;
        return 0;
    }
    if (bm_streq(key, "model"))
        return parse_name(value, cfg->model, sizeof cfg->model);
    if (bm_streq(key, "tokenizer"))
        return parse_name(value, cfg->tokenizer, sizeof cfg->tokenizer);
    if (bm_streq(key, "prompt"))
        return bm_strlcpy(cfg->prompt, value, sizeof cfg->prompt) ? 0 : -1;
    if (bm_streq(key, "steps"))
        return parse_u32_range(value, 1, 1000000, &cfg->steps);
    if (bm_streq(key, "seed")) {
        if (parse_u64(value, UINT64_MAX, &u) < 0)
            return -1;
        cfg->seed = u;
        return 0;
    }
    if (bm_streq(key, "temperature"))
        return parse_real_range(value, 0.0, 100.0, &cfg->temperature);
    if (bm_streq(key, "topp"))
        return parse_real_range(value, 0.0, 1.0, &cfg->topp);
    if (bm_streq(key, "repeats"))
        return parse_u32_range(value, 1, 1000, &cfg->repeats);
    if (bm_streq(key, "kernel")) {
        if (bm_streq(value, "auto"))
            cfg->kernel = KERNEL_AUTO;
        else if (bm_streq(value, "avx2"))
            cfg->kernel = KERNEL_AVX2;
        else if (bm_streq(value, "portable"))
            cfg->kernel = KERNEL_PORTABLE;
        else if (bm_streq(value, "avx2-128"))
            cfg->kernel = KERNEL_AVX2_128;
        else
            return -1;
        return 0;
    }
    if (bm_streq(key, "bench"))
        return parse_flag(value, &cfg->bench);
    if (bm_streq(key, "bench_runs"))
        return parse_u32_range(value, 1, 1000, &cfg->bench_runs);
    if (bm_streq(key, "slowdown_pct"))
        return parse_real_range(value, 0.0, 1000.0, &cfg->slowdown_pct);
    if (bm_streq(key, "shutdown"))
        return parse_flag(value, &cfg->shutdown);
    if (bm_streq(key, "model_url"))
        return parse_url(value, cfg->model_url, sizeof cfg->model_url);
    if (bm_streq(key, "tokenizer_url"))
        return parse_url(value, cfg->tokenizer_url, sizeof cfg->tokenizer_url);
    if (bm_streq(key, "model_sha256"))
        return parse_sha256(value, cfg->model_sha256);
    if (bm_streq(key, "tokenizer_sha256"))
        return parse_sha256(value, cfg->tokenizer_sha256);
    if (bm_streq(key, "net_timeout_ms"))
        return parse_u32_range(value, 1, 600000, &cfg->net_timeout_ms);
    return 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int is_key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

int config_parse(struct config *cfg, const char *text, size_t len, struct cfg_error *err)
{
    char key[32];
    char value[CFG_PROMPT_MAX];
    size_t pos = 0;
    unsigned line = 0;

    while (pos < len) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        line++;
        size_t i = pos;
        pos = end + 1;

        while (i < end && is_space(text[i]))
            i++;
        if (i == end || text[i] == '#')
            continue;

        size_t k = 0;
        while (i < end && is_key_char(text[i])) {
            if (k + 1 >= sizeof key) {
                detail(err, "syntax", line, "key too long", NULL);
                return -1;
            }
            key[k++] = text[i++];
        }
        key[k] = 0;
        while (i < end && is_space(text[i]))
            i++;
        if (k == 0 || i == end || text[i] != '=') {
            detail(err, "syntax", line, "expected key=value", NULL);
            return -1;
        }
        i++;
        while (i < end && is_space(text[i]))
            i++;

        size_t v = 0;
        if (i < end && text[i] == '"') {
            i++;
            for (;;) {
                if (i >= end) {
                    detail(err, "syntax", line, "unterminated quote", NULL);
                    return -1;
                }
                char c = text[i++];
                if (c == '"')
                    break;
                if (c == '\\' && i < end && (text[i] == '"' || text[i] == '\\'))
                    c = text[i++];
                if (v + 1 >= sizeof value) {
                    detail(err, "bad_value", line, "value too long for", key);
                    return -1;
                }
                value[v++] = c;
            }
            while (i < end && is_space(text[i]))
                i++;
            if (i < end && text[i] != '#') {
                detail(err, "syntax", line, "text after the closing quote", NULL);
                return -1;
            }
        } else {
            while (i < end && text[i] != '#') {
                if (v + 1 >= sizeof value) {
                    detail(err, "bad_value", line, "value too long for", key);
                    return -1;
                }
                value[v++] = text[i++];
            }
            while (v > 0 && is_space(value[v - 1]))
                v--;
        }
        value[v] = 0;

        int r = apply(cfg, key, value);
        if (r > 0) {
            detail(err, "unknown_key", line, "unknown key", key);
            return -1;
        }
        if (r < 0) {
            detail(err, "bad_value", line, "bad value for", key);
            return -1;
        }
    }
    return 0;
}

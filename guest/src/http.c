#include "http.h"
#include "bmlib.h"
#include "out.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* a.b.c.d, each part 0..255 without sign; returns the characters used, 0 when invalid. */
static size_t parse_ipv4(const char *s, uint8_t ip[4])
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (s[i] != '.')
                return 0;
            i++;
        }
        unsigned v = 0, digits = 0;
        while (is_digit(s[i]) && digits < 4) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0 || digits > 3 || v > 255)
            return 0;
        ip[part] = (uint8_t)v;
    }
    return i;
}

int http_parse_url(const char *url, struct http_url *out, const char **why)
{
    const char *scheme = "http://";
    size_t i = 0;
    bm_memset(out, 0, sizeof *out);
    for (; scheme[i]; i++) {
        if (lower(url[i]) != scheme[i]) {
            *why = "not an http:// URL";
            return -1;
        }
    }
    const char *host = url + i;
    size_t n = parse_ipv4(host, out->ip);
    if (n == 0) {
        *why = "host is not an IPv4 address (no DNS)";
        return -1;
    }
    if (n >= sizeof out->host) {
        *why = "host too long";
        return -1;
    }
    bm_memcpy(out->host, host, n);
    out->host[n] = 0;
    const char *p = host + n;
    out->port = 80;
    if (*p == ':') {
        unsigned v = 0, digits = 0;
        for (p++; is_digit(*p) && digits < 6; p++, digits++)
            v = v * 10 + (unsigned)(*p - '0');
        if (digits == 0 || v == 0 || v > 65535) {
            *why = "bad port";
            return -1;
        }
        out->port = (uint16_t)v;
    }
    if (*p == 0) {
        out->path[0] = '/';
        out->path[1] = 0;
        return 0;
    }
    if (*p != '/') {
        *why = "expected / after the host";
        return -1;
    }
    for (const char *q = p; *q; q++) {
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f || *q == '#') {
            *why = "path has a space, control or non-ASCII byte, or a fragment";
            return -1;
        }
    }
    if (!bm_strlcpy(out->path, p, sizeof out->path)) {
        *why = "path too long";
        return -1;
    }
    return 0;
}

struct writer {
    char *buf;
    size_t cap;
    size_t len;
    int overflow;
};

static void put(struct writer *w, const char *s)
{
    for (; *s; s++) {
        if (w->len + 1 >= w->cap) {
            w->overflow = 1;
            return;
        }
        w->buf[w->len++] = *s;
    }
}

size_t http_build_request(const struct http_url *url, char *buf, size_t cap)
{
    struct writer w = {buf, cap, 0, 0};
    put(&w, "GET ");
    put(&w, url->path);
    put(&w, " HTTP/1.1\r\nHost: ");
    put(&w, url->host);
    if (url->port != 80) {
        char digits[24];
        digits[fmt_u64(digits, url->port)] = 0;
        put(&w, ":");
        put(&w, digits);
    }
    put(&w, "\r\nUser-Agent: bm-ref-guest\r\nAccept: */*\r\n"
            "Accept-Encoding: identity\r\nConnection: close\r\n\r\n");
    if (w.overflow || cap == 0)
        return 0;
    buf[w.len] = 0;
    return w.len;
}

/* Case-insensitive match of a header name at line[0..n) followed by ':'. */
static int header_is(const char *line, size_t n, const char *name)
{
    size_t k = bm_strlen(name);
    if (n <= k || line[k] != ':')
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lower(line[i]) != name[i])
            return 0;
    return 1;
}

/* The value of a header line: after ':' and spaces, trailing spaces dropped. */
static void header_value(const char *line, size_t n, size_t *start, size_t *end)
{
    size_t i = 0;
    while (i < n && line[i] != ':')
        i++;
    i++;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t e = n;
    while (e > i && (line[e - 1] == ' ' || line[e - 1] == '\t'))
        e--;
    *start = i;
    *end = e;
}

static int parse_length(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int value_is(const char *s, size_t n, const char *word)
{
    if (bm_strlen(word) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(s[i]) != word[i])
            return 0;
    return 1;
}

int http_parse_head(const char *buf, size_t len, struct http_response *r, const char **why)
{
    /* Find the end of the head: CRLF CRLF (a bare LF LF is accepted too). */
    size_t end = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n') {
            end = i + 2;
            break;
        }
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
            end = i + 3;
            break;
        }
    }
    /* Judge the status line as soon as it is there: a non-HTTP reply fails early. */
    const char *proto = "HTTP/1.";
    for (size_t i = 0; i < 7 && i < len; i++) {
        if (buf[i] != proto[i]) {
            *why = "not an HTTP/1.x status line";
            return -1;
        }
    }
    if (end == 0)
        return 0;

    bm_memset(r, 0, sizeof *r);
    r->head_len = end;
    size_t pos = 0;
    int first = 1;
    while (pos < end) {
        size_t e = pos;
        while (e < end && buf[e] != '\n')
            e++;
        size_t n = e - pos;
        if (n > 0 && buf[pos + n - 1] == '\r')
            n--;
        const char *line = buf + pos;
        pos = e + 1;
        if (first) {
            first = 0;
            /* HTTP/1.x SP 3DIGIT [SP reason] */
            if (n < 12 || line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) ||
                !is_digit(line[11]) || (n > 12 && line[12] != ' ')) {
                *why = "malformed status line";
                return -1;
            }
            r->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
            continue;
        }
        if (n == 0)
            break;
        size_t vs, ve;
        if (header_is(line, n, "content-length")) {
            header_value(line, n, &vs, &ve);
            uint64_t v;
            if (parse_length(line + vs, ve - vs, &v) != 0 ||
                (r->has_length && v != r->content_length)) {
                *why = "bad Content-Length";
                return -1;
            }
            r->has_length = 1;
            r->content_length = v;
        } else if (header_is(line, n, "transfer-encoding")) {
            header_value(line, n, &vs, &ve);
            if (!value_is(line + vs, ve - vs, "identity"))
                r->chunked = 1;
        }
    }
    return 1;
}

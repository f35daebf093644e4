#include "download.h"
#include "bmlib.h"
#include "http.h"
#include "out.h"
#include "platform.h"
#include "sha256.h"

/* The response head must fit here (bytes of the body after it are copied out). */
#define HEAD_MAX 16384
/* Body size of a .sha256 file we accept. */
#define SIDECAR_MAX 4096
/* First buffer when the server gives no Content-Length; doubled as needed. */
#define GROW_START (1u << 20)

static char head[HEAD_MAX];

struct failure {
    const char *reason;       /* a [net] fallback reason */
    char detail[160];
};

/* detail = a + b + c (any may be NULL), truncated to fit. */
static void fail(struct failure *f, const char *reason, const char *a, const char *b,
                 const char *c)
{
    const char *parts[3] = {a, b, c};
    size_t n = 0;
    f->reason = reason;
    for (int p = 0; p < 3; p++)
        for (const char *s = parts[p]; s && *s && n + 1 < sizeof f->detail; s++)
            f->detail[n++] = *s;
    f->detail[n] = 0;
}

static void fail_u64(struct failure *f, const char *reason, const char *a, uint64_t v,
                     const char *c)
{
    char num[24];
    num[fmt_u64(num, v)] = 0;
    fail(f, reason, a, num, c);
}

/* "reset" from the transport is a body that ended early; other words are reasons. */
static const char *io_reason(const char *reason)
{
    if (reason == NULL || bm_streq(reason, "reset"))
        return "short_body";
    return reason;
}

void net_session_init(struct net_session *s, uint64_t tsc_hz, uint32_t timeout_ms)
{
    bm_memset(s, 0, sizeof *s);
    s->tsc_hz = tsc_hz;
    s->timeout_ms = timeout_ms;
}

static void print_ip(const char *key, const uint8_t ip[4])
{
    out_str(" ");
    out_str(key);
    out_str("=");
    for (int i = 0; i < 4; i++) {
        if (i)
            out_str(".");
        out_u64(ip[i]);
    }
}

static void print_mac(const uint8_t mac[6])
{
    static const char digits[] = "0123456789abcdef";
    char text[18];
    for (int i = 0; i < 6; i++) {
        text[3 * i] = digits[mac[i] >> 4];
        text[3 * i + 1] = digits[mac[i] & 15];
        text[3 * i + 2] = i == 5 ? 0 : ':';
    }
    out_kv_str("mac", text);
}

/* Brings the network up once per run and prints the interface line. */
static int session_up(struct net_session *s, struct failure *f)
{
    if (s->state == 0) {
        struct plat_net_info info;
        const char *reason = "no_nic";
        bm_memset(&info, 0, sizeof info);
        if (plat_net_info(s->timeout_ms, &info, &reason) != 0) {
            s->state = -1;
            s->down_reason = reason ? reason : "no_nic";
        } else {
            s->state = 1;
            out_str("[net]");
            out_kv_u64("nic", info.nic);
            out_kv_u64("nics", info.nic_count);
            print_mac(info.mac);
            print_ip("ip", info.ip);
            out_kv_str("source", info.source ? info.source : "-");
            out_kv_u64("setup_ms", info.setup_ms);
            out_end();
        }
    }
    if (s->state < 0) {
        if (bm_streq(s->down_reason, "no_dhcp"))
            fail(f, "no_dhcp", "no address from DHCP", NULL, NULL);
        else
            fail(f, s->down_reason, "no network interface", NULL, NULL);
        return -1;
    }
    return 0;
}

static double seconds_between(const struct net_session *s, uint64_t t0, uint64_t t1)
{
    return s->tsc_hz ? (double)(t1 - t0) / (double)s->tsc_hz : 0.0;
}

/* Grows a buffer of unknown final size; returns 0, or -1 when memory is exhausted. */
static int grow(struct download *d)
{
    size_t bigger = d->alloc * 2;
    if (bigger < d->alloc)
        return -1;
    uint8_t *next = plat_alloc(bigger);
    if (next == NULL)
        return -1;
    bm_memcpy(next, d->data, d->size);
    plat_free(d->data, d->alloc);
    d->data = next;
    d->alloc = bigger;
    return 0;
}

static void print_progress(const char *file, unsigned pct, uint64_t bytes)
{
    out_str("[net] progress");
    out_kv_str("file", file);
    out_kv_u64("pct", pct);
    out_kv_u64("bytes", bytes);
    out_end();
}

/* One GET. quiet: no [net] lines (the .sha256 file). max_body: 0 for no limit.
 * Returns 0 with *d filled and *seconds the transfer time, or -1 with *f filled. */
static int transfer(struct net_session *s, const char *file, const struct http_url *url,
                    int quiet, size_t max_body, struct download *d, double *seconds,
                    struct failure *f)
{
    char request[HTTP_PATH_MAX + HTTP_HOST_MAX + 160];
    size_t request_len = http_build_request(url, request, sizeof request);
    const char *reason = NULL;
    bm_memset(d, 0, sizeof *d);
    if (request_len == 0) {
        fail(f, "bad_url", "request too long", NULL, NULL);
        return -1;
    }
    if (!quiet) {
        out_str("[net] connecting");
        out_kv_str("file", file);
        out_kv_str("host", url->host);
        out_kv_u64("port", url->port);
        out_end();
    }
    uint64_t t0 = plat_cycles();
    int conn = plat_net_open(url->ip, url->port, s->timeout_ms, &reason);
    if (conn < 0) {
        reason = reason ? reason : "refused";
        if (bm_streq(reason, "timeout"))
            fail_u64(f, "timeout", "no connection within ", s->timeout_ms, " ms");
        else
            fail(f, "refused", "connection refused by ", url->host, NULL);
        return -1;
    }
    if (plat_net_send(conn, request, request_len, s->timeout_ms, &reason) != 0) {
        fail(f, io_reason(reason), "sending the request failed", NULL, NULL);
        plat_net_close(conn);
        return -1;
    }

    /* The head. */
    size_t got = 0;
    struct http_response r;
    const char *why = "";
    for (;;) {
        if (got == sizeof head) {
            fail(f, "http_status", "response head over 16 KiB", NULL, NULL);
            plat_net_close(conn);
            return -1;
        }
        long n = plat_net_recv(conn, head + got, sizeof head - got, s->timeout_ms, &reason);
        if (n < 0 && reason && bm_streq(reason, "timeout")) {
            fail_u64(f, "timeout", "no response within ", s->timeout_ms, " ms");
            plat_net_close(conn);
            return -1;
        }
        if (n <= 0) {
            fail(f, "short_body", "connection closed before the response head", NULL, NULL);
            plat_net_close(conn);
            return -1;
        }
        got += (size_t)n;
        int done = http_parse_head(head, got, &r, &why);
        if (done < 0) {
            fail(f, "http_status", why, NULL, NULL);
            plat_net_close(conn);
            return -1;
        }
        if (done > 0)
            break;
    }
    if (!quiet) {
        out_str("[net] http");
        out_kv_u64("status", (uint64_t)r.status);
        if (r.has_length)
            out_kv_u64("content_length", r.content_length);
        else
            out_kv_str("content_length", "-");
        out_kv_str("file", file);
        out_end();
    }
    if (r.status != 200) {
        fail_u64(f, "http_status", "HTTP ", (uint64_t)r.status, NULL);
        plat_net_close(conn);
        return -1;
    }
    if (r.chunked) {
        fail(f, "http_status", "chunked transfer encoding is not supported", NULL, NULL);
        plat_net_close(conn);
        return -1;
    }
    if (r.has_length && (r.content_length > (uint64_t)(size_t)-1 / 2 ||
                         (max_body && r.content_length > max_body))) {
        fail_u64(f, "no_memory", "Content-Length ", r.content_length, " too large");
        plat_net_close(conn);
        return -1;
    }

    /* The body, straight into its final buffer. */
    size_t want = r.has_length ? (size_t)r.content_length : 0;
    d->alloc = r.has_length ? (want ? want : 1) : (max_body ? max_body : GROW_START);
    d->data = plat_alloc(d->alloc);
    if (d->data == NULL) {
        fail_u64(f, "no_memory", "cannot allocate ", d->alloc, " bytes");
        d->alloc = 0;
        plat_net_close(conn);
        return -1;
    }
    size_t extra = got - r.head_len;
    if (r.has_length && extra > want)
        extra = want;
    bm_memcpy(d->data, head + r.head_len, extra);
    d->size = extra;
    unsigned next_pct = 10;
    int status = 0;
    for (;;) {
        if (r.has_length && want > 0) {
            while (next_pct <= 100 && (uint64_t)d->size * 100 >= (uint64_t)next_pct * want) {
                if (!quiet)
                    print_progress(file, next_pct, d->size);
                next_pct += 10;
            }
        }
        if (r.has_length && d->size == want)
            break;
        if (!r.has_length && d->size == d->alloc) {
            if (max_body) {
                fail(f, "no_memory", "body larger than expected", NULL, NULL);
                status = -1;
                break;
            }
            if (grow(d) != 0) {
                fail_u64(f, "no_memory", "cannot grow the buffer past ", d->size, " bytes");
                status = -1;
                break;
            }
        }
        size_t room = r.has_length ? want - d->size : d->alloc - d->size;
        long n = plat_net_recv(conn, d->data + d->size, room, s->timeout_ms, &reason);
        if (n > 0) {
            d->size += (size_t)n;
            continue;
        }
        if (n == 0 && !r.has_length)
            break; /* the end of a body delimited by the connection */
        if (n < 0 && reason && bm_streq(reason, "timeout"))
            fail_u64(f, "timeout", "no data within ", s->timeout_ms, " ms");
        else
            fail_u64(f, "short_body", "connection closed after ", d->size, " bytes");
        status = -1;
        break;
    }
    uint64_t t1 = plat_cycles();
    plat_net_close(conn);
    if (status != 0) {
        plat_free(d->data, d->alloc);
        bm_memset(d, 0, sizeof *d);
        return -1;
    }
    *seconds = seconds_between(s, t0, t1);
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int download_parse_sha256_file(const uint8_t *text, size_t len, char hex[65])
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
        i++;
    if (len - i < 64)
        return -1;
    for (size_t k = 0; k < 64; k++) {
        char c = (char)text[i + k];
        if (hex_value(c) < 0)
            return -1;
        hex[k] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    /* 64 digits exactly: a 65th hex digit means this is not a SHA-256. */
    if (len - i > 64 && hex_value((char)text[i + 64]) >= 0)
        return -1;
    hex[64] = 0;
    return 0;
}

/* Fetches <url>.sha256 quietly; returns 0 with hex filled when the server has one. */
static int fetch_sidecar(struct net_session *s, const char *url, char hex[65])
{
    char sidecar[HTTP_PATH_MAX + HTTP_HOST_MAX + 32];
    size_t n = bm_strlen(url);
    if (n + 8 > sizeof sidecar)
        return -1;
    bm_memcpy(sidecar, url, n);
    bm_memcpy(sidecar + n, ".sha256", 8);
    struct http_url u;
    const char *why;
    if (http_parse_url(sidecar, &u, &why) != 0)
        return -1;
    struct download d;
    struct failure f;
    double seconds;
    if (transfer(s, "-", &u, 1, SIDECAR_MAX, &d, &seconds, &f) != 0)
        return -1;
    int r = download_parse_sha256_file(d.data, d.size, hex);
    plat_free(d.data, d.alloc);
    return r;
}

static void to_hex(const uint8_t digest[32], char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = 0;
}

static void print_fallback(const char *file, const struct failure *f)
{
    out_str("[net] fallback");
    out_kv_str("file", file);
    out_kv_str("reason", f->reason);
    out_kv_quoted("detail", f->detail);
    out_end();
}

int download_file(struct net_session *s, const char *file, const char *url,
                  const char *expected_hex, struct download *out)
{
    struct failure f;
    struct http_url u;
    const char *why = "";
    double seconds = 0.0;
    bm_memset(out, 0, sizeof *out);
    if (http_parse_url(url, &u, &why) != 0) {
        fail(&f, "bad_url", why, NULL, NULL);
        print_fallback(file, &f);
        return -1;
    }
    if (session_up(s, &f) != 0 || transfer(s, file, &u, 0, 0, out, &seconds, &f) != 0) {
        print_fallback(file, &f);
        return -1;
    }

    uint8_t digest[32];
    char actual[65], expected[65];
    uint64_t h0 = plat_cycles();
    sha256(out->data, out->size, digest);
    uint64_t h1 = plat_cycles();
    to_hex(digest, actual);
    const char *from = "-";
    if (expected_hex && expected_hex[0]) {
        bm_strlcpy(expected, expected_hex, sizeof expected);
        from = "config";
    } else if (fetch_sidecar(s, url, expected) == 0) {
        from = "url";
    }
    int verified = from[0] == '-' ? -1 : bm_streq(actual, expected);

    out_str("[net] done");
    out_kv_str("file", file);
    out_kv_u64("bytes", out->size);
    out_kv_fixed("seconds", seconds, 3);
    out_kv_fixed("mb_s", seconds > 0.0 ? (double)out->size / 1e6 / seconds : 0.0, 3);
    out_kv_str("sha256", actual);
    if (verified < 0)
        out_kv_str("verified", "-");
    else
        out_kv_u64("verified", (uint64_t)verified);
    out_kv_str("expected_from", from);
    out_kv_fixed("hash_ms", seconds_between(s, h0, h1) * 1000.0, 3);
    out_end();
    if (verified == 0) {
        fail(&f, "digest_mismatch", "expected ", expected, NULL);
        print_fallback(file, &f);
        plat_free(out->data, out->alloc);
        bm_memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}

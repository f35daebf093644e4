/* HTTP/1.1 client protocol, without I/O: URL parsing, the GET request, the response head.
 * The transfer itself (download.c) streams the body over platform.h's plat_net_*.
 * Supported: http:// URLs whose host is an IPv4 address (no DNS), a body delimited by
 * Content-Length or by the server closing the connection. Not supported: chunked
 * transfer encoding (reported as such), redirects, https. */
#ifndef BM_HTTP_H
#define BM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_HOST_MAX 64
#define HTTP_PATH_MAX 256

struct http_url {
    char host[HTTP_HOST_MAX];   /* as written: a.b.c.d */
    uint8_t ip[4];
    uint16_t port;              /* 80 when absent */
    char path[HTTP_PATH_MAX];   /* starts with '/' */
};

/* Parses http://a.b.c.d[:port][/path]. Returns 0, or -1 with *why set to a static text. */
int http_parse_url(const char *url, struct http_url *out, const char **why);

/* "GET <path> HTTP/1.1" with Host, User-Agent, Accept and Connection: close.
 * Returns the length, 0 when cap is too small. */
size_t http_build_request(const struct http_url *url, char *buf, size_t cap);

struct http_response {
    int status;                 /* e.g. 200 */
    int has_length;             /* a Content-Length header was present */
    uint64_t content_length;
    int chunked;                /* Transfer-Encoding other than identity */
    size_t head_len;            /* bytes of the head, blank line included */
};

/* Parses the response head at the start of buf[0..len). Returns 1 when the head is
 * complete (r filled), 0 when more bytes are needed, -1 when it is not HTTP
 * (*why says what). */
int http_parse_head(const char *buf, size_t len, struct http_response *r, const char **why);

#endif

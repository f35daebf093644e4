/* Network boot of a file: HTTP GET into one buffer, [net] lines (MARKERS.md), SHA-256
 * checked against the configuration or a <url>.sha256 file beside it. On any failure it
 * prints `[net] fallback ...` and the caller reads the file from the disk instead. */
#ifndef BM_DOWNLOAD_H
#define BM_DOWNLOAD_H

#include <stddef.h>
#include <stdint.h>

/* State shared by the downloads of one run: the interface is brought up once. */
struct net_session {
    uint64_t tsc_hz;          /* for seconds and MB/s; 0 prints 0.000 */
    uint32_t timeout_ms;      /* connect and per-read timeout */
    int state;                /* 0 not tried, 1 up, -1 down */
    const char *down_reason;  /* no_nic or no_dhcp when down */
};

struct download {
    uint8_t *data;
    size_t size;              /* bytes of the file */
    size_t alloc;             /* what to give plat_free (>= size) */
};

void net_session_init(struct net_session *s, uint64_t tsc_hz, uint32_t timeout_ms);

/* Downloads url as `file` (the name the [net] lines and the fallback use). expected_hex:
 * 64 lowercase hex digits, or "" to use <url>.sha256 when the server has it.
 * Returns 0 with *out filled, or -1 after printing the fallback line. */
int download_file(struct net_session *s, const char *file, const char *url,
                  const char *expected_hex, struct download *out);

/* The first 64 hex digits at the start of a .sha256 file (after blanks), lowercased into
 * hex[65]. Returns 0, or -1 when there are not 64 of them. */
int download_parse_sha256_file(const uint8_t *text, size_t len, char hex[65]);

#endif

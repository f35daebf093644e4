/* platform.h on Linux: stdio, malloc, clock_gettime. For tests and native-speed runs. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE   /* madvise */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "../out.h"
#include "../platform.h"

void plat_write(const char *bytes, size_t len)
{
    while (len > 0) {
        ssize_t n = write(1, bytes, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return;
        }
        bytes += n;
        len -= (size_t)n;
    }
}

int plat_read_line(char *buf, size_t cap)
{
    if (cap == 0)
        return -1;
    if (!fgets(buf, (int)cap, stdin)) {
        buf[0] = 0;
        return -1;
    }
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    return (int)n;
}

/* Large blocks (the checkpoint, the arena) go on 2 MB pages where the kernel allows it:
 * decoding streams all weights once per token, and with 4 KB pages nearly every page of
 * them is a TLB miss (the UEFI guest runs on the firmware's large identity pages). */
#define HUGE_PAGE ((size_t)2 << 20)

void *plat_alloc(size_t bytes)
{
    size_t align = bytes >= 2 * HUGE_PAGE ? HUGE_PAGE : 64;
    size_t rounded = (bytes + align - 1) & ~(align - 1);
    if (rounded < bytes)
        return NULL;
    void *p = aligned_alloc(align, rounded ? rounded : 64);
    if (!p)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (align == HUGE_PAGE)
        (void)madvise(p, rounded, MADV_HUGEPAGE);   /* advice only: fine if refused */
#endif
    memset(p, 0, rounded);
    return p;
}

void plat_free(void *ptr, size_t bytes)
{
    (void)bytes;
    free(ptr);
}

int plat_read_file(const char *name, uint8_t **data, size_t *size, const char **reason)
{
    FILE *f = fopen(name, "rb");
    if (!f) {
        *reason = errno == ENOENT ? "missing" : "read_failed";
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        *reason = "read_failed";
        return -2;
    }
    long len = ftell(f);
    rewind(f);
    if (len < 0) {
        fclose(f);
        *reason = "read_failed";
        return -2;
    }
    uint8_t *buf = plat_alloc((size_t)len + 1);
    if (!buf) {
        fclose(f);
        *reason = "no_memory";
        return -3;
    }
    size_t got = fread(buf, 1, (size_t)len, f);
    fclose(f);
    if (got != (size_t)len) {
        free(buf);
        *reason = "read_failed";
        return -2;
    }
    *data = buf;
    *size = (size_t)len;
    return 0;
}

uint64_t plat_cycles(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int plat_timer_init(struct plat_timer_info *info)
{
    const uint64_t window_ns = 50000000;   /* 50 ms */
    uint64_t t0 = now_ns(), c0 = plat_cycles();
    uint64_t t1;
    while ((t1 = now_ns()) - t0 < window_ns)
        ;
    uint64_t c1 = plat_cycles();
    info->tsc_hz = (uint64_t)((double)(c1 - c0) * 1e9 / (double)(t1 - t0) + 0.5);
    info->calib_ms = (uint32_t)((t1 - t0) / 1000000u);
    info->source = "clock";
    info->pm_port = 0;
    return info->tsc_hz ? 0 : -1;
}

void plat_firmware_info(struct plat_firmware_info *info)
{
    info->platform = "host";
    strcpy(info->vendor, "-");
    info->revision = 0;
    info->uefi_major = 0;
    info->uefi_minor = 0;
}

/* The host cannot change CR4 or XCR0: it only reads back what the kernel enabled. */
int plat_enable_avx(void)
{
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (!((c >> 27) & 1))
        return 0;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    uint64_t xcr0 = (uint64_t)hi << 32 | lo;
    int avx_state = (xcr0 & 6) == 6;
    out_str("[cpu] step=xcr0");
    out_kv_hex("xcr0", xcr0);
    out_kv_u64("avx_state", (uint64_t)avx_state);
    out_end();
    return avx_state;
}

void plat_shutdown(int ok, int stay_up)
{
    (void)stay_up;
    exit(ok ? 0 : 1);
}

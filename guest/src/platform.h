/* The services the portable core needs from the machine it runs on.
 * Implemented twice: platform_uefi.c (gnu-efi, the real guest) and platform_host.c
 * (Linux, for tests and the native-speed reference). Nothing else in the core touches
 * UEFI or libc I/O directly. */
#ifndef BM_PLATFORM_H
#define BM_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Console: raw bytes, lines end with "\r\n" (the core adds them). */
void plat_write(const char *bytes, size_t len);

/* Reads one line typed on the console (ends at CR or LF, which is not stored).
 * Returns its length, or -1 when the console is closed. Always NUL-terminates. */
int plat_read_line(char *buf, size_t cap);

/* Whole-file read from the boot volume (UEFI) or the working directory (host).
 * Returns 0 on success; on failure a negative code and *reason points at a static word
 * from MARKERS.md ("missing", "read_failed", "no_memory"). */
int plat_read_file(const char *name, uint8_t **data, size_t *size, const char **reason);

/* Memory: zeroed, 64-byte aligned; NULL when exhausted. */
void *plat_alloc(size_t bytes);
void plat_free(void *ptr, size_t bytes);

/* Time: the TSC, and its frequency measured once by plat_timer_init. */
uint64_t plat_cycles(void);
struct plat_timer_info {
    uint64_t tsc_hz;
    uint32_t calib_ms;
    const char *source;   /* "acpi_pm", "stall" or "clock" */
    uint32_t pm_port;     /* 0 when not the ACPI PM timer */
};
int plat_timer_init(struct plat_timer_info *info);

/* Firmware description for the [boot] line. */
struct plat_firmware_info {
    const char *platform;  /* "uefi" or "host" */
    char vendor[64];       /* UTF-8 */
    uint32_t revision;
    uint32_t uefi_major;
    uint32_t uefi_minor;
};
void plat_firmware_info(struct plat_firmware_info *info);

/* CPU: enable AVX state if the CPU can (UEFI sets CR4.OSXSAVE and XCR0; the host only
 * reads XCR0). Prints the [cpu] step lines itself. Returns 1 when AVX state is usable. */
int plat_enable_avx(void);

/* Network transport for download.c (HTTP over TCP/IPv4). UEFI: the firmware's network
 * stack (SNP/MNP/IP4/TCP4, address from DHCP); host: POSIX sockets. Timeouts are in
 * milliseconds; failures set *reason to a static word of MARKERS.md's [net] fallback
 * reasons ("no_nic", "no_dhcp", "refused", "timeout") or "reset" (the peer aborted). */
struct plat_net_info {
    uint32_t nic;          /* index of the interface used, among those found */
    uint32_t nic_count;
    uint8_t mac[6];
    uint8_t ip[4];
    const char *source;    /* how the address was obtained: "dhcp", "static" or "host" */
    uint32_t setup_ms;     /* time spent bringing the interface up */
};
/* Brings the interface up the first time (NIC, then an address within timeout_ms, or
 * longer when the platform's DHCP needs it: 15 s at least on UEFI); later
 * calls give the same answer. Returns 0, or -1 with *reason "no_nic" or "no_dhcp". */
int plat_net_info(uint32_t timeout_ms, struct plat_net_info *info, const char **reason);
/* Opens a TCP connection. Returns a handle >= 0, or -1 with *reason "refused" or
 * "timeout". One connection at a time is enough for the core. */
int plat_net_open(const uint8_t ip[4], uint16_t port, uint32_t timeout_ms,
                  const char **reason);
/* Sends all len bytes. Returns 0, or -1 with *reason "timeout" or "reset". */
int plat_net_send(int conn, const void *data, size_t len, uint32_t timeout_ms,
                  const char **reason);
/* Receives at most cap bytes straight into buf, waiting at most timeout_ms for the first.
 * Returns the count (> 0), 0 when the peer closed the connection, -1 with *reason
 * "timeout" or "reset". */
long plat_net_recv(int conn, void *buf, size_t cap, uint32_t timeout_ms, const char **reason);
void plat_net_close(int conn);

/* Ends the run: UEFI ResetSystem(shutdown) unless stay_up; host exit(status). */
void plat_shutdown(int ok, int stay_up);

#endif

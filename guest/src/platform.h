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

/* Ends the run: UEFI ResetSystem(shutdown) unless stay_up; host exit(status). */
void plat_shutdown(int ok, int stay_up);

#endif

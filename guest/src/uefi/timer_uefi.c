/* Time: the TSC, calibrated once against the ACPI PM timer (3.579545 MHz), or against
 * the firmware's Stall when there is no usable PM timer. */
#include "uefi_internal.h"
#include "../platform.h"

#define PM_TIMER_HZ 3579545u
#define CALIB_MS 50u
/* Reads of a counter that never moves before we call it dead (far more than the
 * ~180,000 ticks of a 50 ms window would ever need). */
#define STUCK_READS 2000000u

UINT64 uefi_tsc_hz;

uint64_t plat_cycles(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static uint32_t pm_read(const struct uefi_pm_timer *timer)
{
    uint32_t value;
    if (timer->in_io_space) {
        uint16_t port = (uint16_t)timer->address;
        __asm__ volatile("inl %w1, %0" : "=a"(value) : "Nd"(port));
    } else {
        value = *(volatile uint32_t *)(UINTN)timer->address;
    }
    return timer->bits == 32 ? value : (value & 0xffffffu);
}

/* Counts PM ticks until the window has passed; returns the TSC cycles it took, 0 when
 * the counter does not move. *ticks gets the exact tick count (wraps included). */
static uint64_t measure_pm(const struct uefi_pm_timer *timer, uint64_t *ticks)
{
    uint32_t mask = timer->bits == 32 ? 0xffffffffu : 0xffffffu;
    uint64_t target = (uint64_t)PM_TIMER_HZ * CALIB_MS / 1000u;
    uint64_t elapsed = 0;
    uint32_t still = 0;

    /* Start on a tick edge, so the window is measured from the start of a tick. */
    uint32_t prev = pm_read(timer);
    uint32_t now = prev;
    while (now == prev) {
        if (++still > STUCK_READS)
            return 0;
        now = pm_read(timer);
    }
    uint64_t tsc_start = plat_cycles();
    prev = now;
    still = 0;
    while (elapsed < target) {
        now = pm_read(timer);
        if (now == prev) {
            if (++still > STUCK_READS)
                return 0;
            continue;
        }
        still = 0;
        elapsed += (now - prev) & mask;
        prev = now;
    }
    uint64_t tsc_end = plat_cycles();
    *ticks = elapsed;
    return tsc_end - tsc_start;
}

int plat_timer_init(struct plat_timer_info *info)
{
    struct uefi_pm_timer timer;
    if (uefi_acpi_pm_timer(&timer) == 0) {
        uint64_t ticks = 0;
        uint64_t cycles = measure_pm(&timer, &ticks);
        if (cycles > 0 && ticks > 0) {
            info->tsc_hz = cycles * PM_TIMER_HZ / ticks;
            info->calib_ms = (uint32_t)((ticks * 1000u + PM_TIMER_HZ / 2) / PM_TIMER_HZ);
            info->source = "acpi_pm";
            /* A memory-mapped timer has no port: report its address, truncated. */
            info->pm_port = (uint32_t)timer.address;
            uefi_tsc_hz = info->tsc_hz;
            return 0;
        }
    }
    uint64_t start = plat_cycles();
    BS->Stall(CALIB_MS * 1000u);
    uint64_t cycles = plat_cycles() - start;
    info->tsc_hz = cycles * 1000u / CALIB_MS;
    info->calib_ms = CALIB_MS;
    info->source = "stall";
    info->pm_port = 0;
    uefi_tsc_hz = info->tsc_hz;
    return info->tsc_hz > 0 ? 0 : -1;
}

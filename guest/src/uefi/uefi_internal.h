/* Shared state of the UEFI platform layer (guest/src/uefi/). Nothing outside this
 * folder includes it: the core only sees platform.h. */
#ifndef BM_UEFI_INTERNAL_H
#define BM_UEFI_INTERNAL_H

#include <efi.h>
#include <efilib.h>

/* The image handle given to efi_main (for LoadedImage -> boot volume). */
extern EFI_HANDLE uefi_image;

/* Chooses the console output path (raw serial when the firmware has one, else
 * ConOut). Called once by efi_main before anything is printed. */
void uefi_console_init(void);

/* Pages of EfiLoaderData, not zeroed; NULL when the firmware has none left. */
void *uefi_pages_alloc(UINTN bytes);
void uefi_pages_free(void *ptr, UINTN bytes);

/* Zeroes len bytes with rep stosb (fast under TCG, never turned into a memset call). */
void uefi_zero(void *dst, UINTN len);

/* The TSC frequency measured by plat_timer_init (0 before), for deadlines. */
extern UINT64 uefi_tsc_hz;

/* The ACPI power-management timer (3.579545 MHz), as the FADT describes it. */
struct uefi_pm_timer {
    int in_io_space;   /* 1: I/O port, 0: memory-mapped */
    UINT64 address;    /* the port number or the physical address */
    int bits;          /* 24 or 32 */
};

/* Finds the PM timer through the EFI configuration table (RSDP -> XSDT/RSDT -> FADT).
 * Returns 0 when found. */
int uefi_acpi_pm_timer(struct uefi_pm_timer *timer);

#endif

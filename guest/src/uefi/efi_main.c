/* The UEFI entry point: set up the library and the console, run the script, power off. */
#include "uefi_internal.h"
#include "../app.h"
#include "../platform.h"

EFI_HANDLE uefi_image;

/* Called by gnu-efi's crt0 with the System V calling convention (no EFIAPI). */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *system_table)
{
    InitializeLib(image, system_table);
    uefi_image = image;

    /* The boot manager arms a 5-minute watchdog before starting an application; a
     * generation under TCG can take longer, and the watchdog would reset the machine. */
    BS->SetWatchdogTimer(0, 0, 0, NULL);

    uefi_console_init();
    int status = app_run("run.cfg");
    plat_shutdown(status == 0, 0);
    return status == 0 ? EFI_SUCCESS : EFI_ABORTED;
}

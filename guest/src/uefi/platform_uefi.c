/* Firmware description and power-off. */
#include "uefi_internal.h"
#include "../platform.h"

/* Appends the UTF-8 form of one UCS-2 character if it fits; returns the new length. */
static size_t put_utf8(char *out, size_t len, size_t cap, CHAR16 c)
{
    if (c < 0x80) {
        if (len + 1 >= cap)
            return len;
        out[len++] = (char)c;
    } else if (c < 0x800) {
        if (len + 2 >= cap)
            return len;
        out[len++] = (char)(0xc0 | (c >> 6));
        out[len++] = (char)(0x80 | (c & 0x3f));
    } else {
        if (len + 3 >= cap)
            return len;
        out[len++] = (char)(0xe0 | (c >> 12));
        out[len++] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[len++] = (char)(0x80 | (c & 0x3f));
    }
    return len;
}

void plat_firmware_info(struct plat_firmware_info *info)
{
    size_t cap = sizeof info->vendor;
    size_t len = 0;
    const CHAR16 *vendor = ST->FirmwareVendor;
    for (size_t i = 0; vendor && vendor[i]; i++) {
        CHAR16 c = vendor[i];
        /* The [boot] line quotes this text: keep it printable, one line. */
        if (c < 0x20 || c == 0x7f || (c >= 0xd800 && c <= 0xdfff))
            c = '?';
        size_t next = put_utf8(info->vendor, len, cap, c);
        if (next == len)
            break;
        len = next;
    }
    info->vendor[len] = 0;
    info->platform = "uefi";
    info->revision = ST->FirmwareRevision;
    info->uefi_major = ST->Hdr.Revision >> 16;
    info->uefi_minor = ST->Hdr.Revision & 0xffff;
}

void plat_shutdown(int ok, int stay_up)
{
    if (stay_up) {
        /* Debugging: keep the machine up until a key arrives on the console. */
        UINTN index;
        EFI_INPUT_KEY key;
        BS->WaitForEvent(1, &ST->ConIn->WaitForKey, &index);
        ST->ConIn->ReadKeyStroke(ST->ConIn, &key);
    }
    RT->ResetSystem(EfiResetShutdown, ok ? EFI_SUCCESS : EFI_ABORTED, 0, NULL);
    for (;;)
        __asm__ volatile("hlt");
}

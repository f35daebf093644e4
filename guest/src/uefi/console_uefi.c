/* Console: output goes to the serial port through EFI_SERIAL_IO_PROTOCOL, byte for
 * byte, when the firmware has one; otherwise through ConOut. Input comes from ConIn.
 * Why not ConOut on serial: OVMF's terminal driver (PC-ANSI) turns every non-ASCII
 * character into '?' (see guest/docs/console.md for the experiment). */
#include "uefi_internal.h"
#include "../platform.h"

static EFI_SERIAL_IO_PROTOCOL *serial;

void uefi_console_init(void)
{
    EFI_HANDLE *handles = NULL;
    UINTN count = 0;
    EFI_STATUS status = BS->LocateHandleBuffer(ByProtocol, &gEfiSerialIoProtocolGuid,
                                               NULL, &count, &handles);
    if (EFI_ERROR(status) || count == 0)
        return;
    /* The first serial port is COM1, the one QEMU's -serial and the boards use. */
    EFI_SERIAL_IO_PROTOCOL *candidate = NULL;
    status = BS->HandleProtocol(handles[0], &gEfiSerialIoProtocolGuid, (void **)&candidate);
    if (!EFI_ERROR(status))
        serial = candidate;
    BS->FreePool(handles);
}

static void serial_write(const char *bytes, size_t len)
{
    int stalls = 0;
    while (len > 0) {
        UINTN chunk = len;
        EFI_STATUS status = serial->Write(serial, &chunk, (void *)bytes);
        /* EDK2's 16550 driver (PciSioSerialDxe, what OVMF and most PCs use) queues a byte
         * in its transmit FIFO before waiting for the UART, and on EFI_TIMEOUT leaves it
         * there (it is sent later) while not counting it. Resending it printed it twice
         * (seen under a loaded TCG host), so the byte that timed out counts as sent. */
        if (status == EFI_TIMEOUT && chunk < len)
            chunk++;
        if (chunk > len)
            chunk = len;
        bytes += chunk;
        len -= chunk;
        if (EFI_ERROR(status) && status != EFI_TIMEOUT)
            return;
        /* A port that accepts nothing for a while (no carrier, broken device):
         * give up rather than hang the run. */
        stalls = chunk == 0 ? stalls + 1 : 0;
        if (stalls > 100)
            return;
    }
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 when invalid
 * (bad lead byte, missing continuation, overlong form, surrogate, above U+10FFFF). */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0;
        if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return need;
}

/* Decodes one UTF-8 character into UCS-2; returns the bytes consumed. Invalid bytes
 * and characters beyond the BMP become '?'. */
static size_t utf8_to_ucs2(const unsigned char *s, size_t n, CHAR16 *out)
{
    size_t len = utf8_length(s, n);
    if (len == 0) {
        *out = '?';
        return 1;
    }
    unsigned value;
    if (len == 1)
        value = s[0];
    else if (len == 2)
        value = ((s[0] & 0x1fu) << 6) | (s[1] & 0x3fu);
    else if (len == 3)
        value = ((s[0] & 0x0fu) << 12) | ((s[1] & 0x3fu) << 6) | (s[2] & 0x3fu);
    else
        value = '?';
    *out = (CHAR16)value;
    return len;
}

static void conout_write(const char *bytes, size_t len)
{
    CHAR16 wide[129];
    const unsigned char *s = (const unsigned char *)bytes;
    size_t used = 0;
    size_t i = 0;
    while (i < len) {
        i += utf8_to_ucs2(s + i, len - i, &wide[used]);
        used++;
        if (used == 128 || i >= len) {
            wide[used] = 0;
            ST->ConOut->OutputString(ST->ConOut, wide);
            used = 0;
        }
    }
}

void plat_write(const char *bytes, size_t len)
{
    if (serial)
        serial_write(bytes, len);
    else
        conout_write(bytes, len);
}

/* Appends a typed character; returns the bytes added (0 when it does not fit).
 * OVMF's serial terminal (PC-ANSI) hands over each received byte as one character, so
 * U+0080..U+00FF are stored as the raw byte: UTF-8 sent by the host arrives intact.
 * Characters above U+00FF (a keyboard, a UTF-8 terminal type) are encoded as UTF-8. */
static size_t put_typed(CHAR16 c, char *out, size_t room)
{
    if (c < 0x100 && room >= 1) {
        out[0] = (char)c;
        return 1;
    }
    if (c >= 0x100 && c < 0x800 && room >= 2) {
        out[0] = (char)(0xc0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c >= 0x800 && room >= 3) {
        out[0] = (char)(0xe0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    return 0;
}

/* A line that is not valid UTF-8 (Latin-1 bytes, a sequence cut by the buffer end)
 * gets '?' for each byte that does not start a valid sequence: the core sees valid text. */
static void repair_utf8(char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        size_t used = utf8_length(s + i, len - i);
        if (used == 0) {
            buf[i] = '?';
            used = 1;
        }
        i += used;
    }
}

/* The terminator of the previous line, so that a CR LF pair ends one line, not two. */
static CHAR16 last_terminator;

int plat_read_line(char *buf, size_t cap)
{
    size_t len = 0;
    if (cap == 0)
        return -1;
    buf[0] = 0;
    for (;;) {
        UINTN index;
        EFI_INPUT_KEY key;
        EFI_STATUS status = BS->WaitForEvent(1, &ST->ConIn->WaitForKey, &index);
        if (EFI_ERROR(status))
            return -1;
        status = ST->ConIn->ReadKeyStroke(ST->ConIn, &key);
        if (status == EFI_NOT_READY)
            continue;
        if (EFI_ERROR(status))
            return -1;
        CHAR16 c = key.UnicodeChar;
        if (c == 0)
            continue; /* a scan code (arrows, function keys): ignored */
        if (c == 0x04 && len == 0)
            return -1; /* Ctrl-D (EOT) on an empty line: the host closes the console */
        if (c == '\n' && last_terminator == '\r' && len == 0) {
            last_terminator = 0;
            continue;
        }
        if (c == '\r' || c == '\n') {
            last_terminator = c;
            buf[len] = 0;
            repair_utf8(buf, len);
            return (int)len;
        }
        last_terminator = 0;
        if (c == 0x08) {
            /* Backspace: drop the last UTF-8 character. */
            while (len > 0 && (buf[len - 1] & 0xc0) == 0x80)
                len--;
            if (len > 0)
                len--;
            buf[len] = 0;
            continue;
        }
        if (c < 0x20 && c != '\t')
            continue; /* other control characters are not text */
        len += put_typed(c, buf + len, cap - 1 - len);
        buf[len] = 0;
    }
}

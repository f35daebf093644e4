/*
 * fixture.c - a tiny UEFI application the plugin's own tests boot instead of the
 * real guest. Its behaviour is chosen by the file mode.txt at the root of the ESP
 * it was loaded from:
 *
 *   lines N   print N numbered lines, then shut down (ResetSystem)
 *   hang      print one line, then halt forever
 *   crash     print one line, then execute ud2 (OVMF dumps "X64 Exception Type")
 *   garbage   write invalid UTF-8 and escape sequences to the UART, then shut down
 *   echo      echo every line typed on ConIn (ended by CR) until "quit"
 *   chat      an interactive REPL like the seeds' llama2 build (chat.c, profile chat.yaml)
 *
 * Every line starts with "[fixture] " so tests can tell it from firmware output.
 * A missing or unreadable mode.txt means "lines 3".
 */
#include "fixture.h"

#define MODE_MAX 64
#define LINE_MAX 128

static EFI_GUID gSerialIoGuid = EFI_SERIAL_IO_PROTOCOL_GUID;

UINTN read_root_file(EFI_HANDLE image, CHAR16 *name, CHAR8 *buf, UINTN size)
{
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_FILE_HANDLE root, file;
    UINTN len = size - 1;

    buf[0] = 0;
    if (EFI_ERROR(uefi_call_wrapper(BS->HandleProtocol, 3, image,
                                    &LoadedImageProtocol, (void **)&loaded)))
        return 0;
    root = LibOpenRoot(loaded->DeviceHandle);
    if (root == NULL)
        return 0;
    if (EFI_ERROR(uefi_call_wrapper(root->Open, 5, root, &file, name,
                                    EFI_FILE_MODE_READ, 0))) {
        uefi_call_wrapper(root->Close, 1, root);
        return 0;
    }
    if (EFI_ERROR(uefi_call_wrapper(file->Read, 3, file, &len, buf)))
        len = 0;
    buf[len] = 0;
    uefi_call_wrapper(file->Close, 1, file);
    uefi_call_wrapper(root->Close, 1, root);
    return len;
}

static int starts_with(const CHAR8 *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != (CHAR8)*prefix++)
            return 0;
    return 1;
}

static UINTN parse_uint(const CHAR8 *s, UINTN fallback)
{
    UINTN v = 0;
    int any = 0;
    while (*s == ' ')
        s++;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (UINTN)(*s++ - '0');
        any = 1;
    }
    return any ? v : fallback;
}

void shutdown(void)
{
    Print(L"[fixture] shutdown\n");
    uefi_call_wrapper(RT->ResetSystem, 4, EfiResetShutdown, EFI_SUCCESS, 0, NULL);
    for (;;)
        __asm__ volatile("hlt");
}

/* Write raw bytes to the first UART, bypassing the terminal's Unicode translation. */
static void raw_serial(const char *bytes, UINTN len)
{
    SERIAL_IO_INTERFACE *serial = NULL;
    if (EFI_ERROR(LibLocateProtocol(&gSerialIoGuid, (void **)&serial)) || serial == NULL)
        return;
    uefi_call_wrapper(serial->Write, 3, serial, &len, (void *)bytes);
}

static void mode_lines(UINTN n)
{
    for (UINTN i = 1; i <= n; i++)
        Print(L"[fixture] line %d of %d\n", i, n);
    Print(L"[fixture] done lines=%d\n", n);
    shutdown();
}

static void mode_garbage(void)
{
    static const char junk[] =
        "[fixture] garbage begin\r\n"
        "bad utf8: \xff\xfe\xc3\x28 \xe2\x82 end\r\n"
        "\x1b[31mred\x1b[0m \x1b[=3h\x1b[2J\x1b[1;1H\x1b]0;title\x07 ansi end\r\n"
        "nul:\x00: cr-only\rline\r\r\n"
        "[fixture] garbage end\r\n";
    raw_serial(junk, sizeof(junk) - 1);
    shutdown();
}

static void mode_echo(void)
{
    CHAR16 line[LINE_MAX];
    UINTN len = 0, index;
    EFI_INPUT_KEY key;

    Print(L"[fixture] echo ready\n");
    for (;;) {
        uefi_call_wrapper(BS->WaitForEvent, 3, 1, &ST->ConIn->WaitForKey, &index);
        if (EFI_ERROR(uefi_call_wrapper(ST->ConIn->ReadKeyStroke, 2, ST->ConIn, &key)))
            continue;
        if (key.UnicodeChar == L'\r') {
            line[len] = 0;
            if (StrCmp(line, L"quit") == 0) {
                Print(L"[fixture] bye\n");
                shutdown();
            }
            Print(L"[fixture] echo: %s\n", line);
            len = 0;
        } else if (key.UnicodeChar >= 0x20 && len < LINE_MAX - 1) {
            line[len++] = key.UnicodeChar;
        }
    }
}

/* crt0-efi passes the arguments with the System V convention: no EFIAPI here. */
EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    CHAR8 mode[MODE_MAX];

    InitializeLib(image, systab);
    uefi_call_wrapper(BS->SetWatchdogTimer, 4, 0, 0, 0, NULL);
    read_root_file(image, L"mode.txt", mode, sizeof(mode));
    for (CHAR8 *p = mode; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = 0;
    Print(L"[fixture] start mode=%a\n", mode[0] ? (char *)mode : "lines 3");

    if (mode[0] == 0)
        mode_lines(3);
    else if (starts_with(mode, "lines"))
        mode_lines(parse_uint(mode + 5, 3));
    else if (starts_with(mode, "hang")) {
        Print(L"[fixture] hanging\n");
        for (;;)
            __asm__ volatile("hlt");
    } else if (starts_with(mode, "crash")) {
        Print(L"[fixture] crashing\n");
        __asm__ volatile("ud2");
    } else if (starts_with(mode, "garbage"))
        mode_garbage();
    else if (starts_with(mode, "echo"))
        mode_echo();
    else if (starts_with(mode, "chat"))
        mode_chat(image);
    Print(L"[fixture] unknown mode\n");
    shutdown();
    return EFI_SUCCESS;
}

/* fixture.h - what the fixture guest's modes share. */
#ifndef FIXTURE_H
#define FIXTURE_H

#include <efi.h>
#include <efilib.h>

/* Read a file from the root of the volume the image was loaded from; returns its length
 * (0 when absent), NUL-terminated in buf. */
UINTN read_root_file(EFI_HANDLE image, CHAR16 *name, CHAR8 *buf, UINTN size);

/* Print "[fixture] shutdown" and power the machine off. */
void shutdown(void) __attribute__((noreturn));

/* chat mode (chat.c): an interactive REPL shaped like the seeds' llama2 UEFI build. */
void mode_chat(EFI_HANDLE image) __attribute__((noreturn));

#endif

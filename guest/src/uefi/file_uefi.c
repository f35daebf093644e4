/* Whole-file reads from the volume the application was loaded from. */
#include "uefi_internal.h"
#include "../platform.h"

/* Large reads go in pieces: some firmware file systems fail single huge reads. */
#define READ_CHUNK (4u * 1024u * 1024u)
#define NAME_MAX_CHARS 255

static EFI_FILE_HANDLE open_root(void)
{
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_STATUS status = BS->HandleProtocol(uefi_image, &gEfiLoadedImageProtocolGuid,
                                           (void **)&loaded);
    if (EFI_ERROR(status) || loaded == NULL)
        return NULL;
    EFI_SIMPLE_FILE_SYSTEM_PROTOCOL *fs = NULL;
    status = BS->HandleProtocol(loaded->DeviceHandle, &gEfiSimpleFileSystemProtocolGuid,
                                (void **)&fs);
    if (EFI_ERROR(status) || fs == NULL)
        return NULL;
    EFI_FILE_HANDLE root = NULL;
    status = fs->OpenVolume(fs, &root);
    return EFI_ERROR(status) ? NULL : root;
}

/* ASCII name with '/' separators -> UCS-2 path with '\'. Returns 0 when too long. */
static int to_path(const char *name, CHAR16 *path)
{
    size_t i = 0;
    for (; name[i]; i++) {
        if (i == NAME_MAX_CHARS)
            return 0;
        unsigned char c = (unsigned char)name[i];
        path[i] = c == '/' ? '\\' : (c < 0x80 ? c : '_');
    }
    path[i] = 0;
    return 1;
}

static int file_size(EFI_FILE_HANDLE file, UINT64 *size)
{
    UINTN info_size = 0;
    EFI_STATUS status = file->GetInfo(file, &gEfiFileInfoGuid, &info_size, NULL);
    if (status != EFI_BUFFER_TOO_SMALL)
        return -1;
    EFI_FILE_INFO *info = NULL;
    status = BS->AllocatePool(EfiLoaderData, info_size, (void **)&info);
    if (EFI_ERROR(status))
        return -1;
    status = file->GetInfo(file, &gEfiFileInfoGuid, &info_size, info);
    if (!EFI_ERROR(status))
        *size = info->FileSize;
    BS->FreePool(info);
    return EFI_ERROR(status) ? -1 : 0;
}

static int fail(const char **reason, const char *word, int code)
{
    if (reason)
        *reason = word;
    return code;
}

int plat_read_file(const char *name, uint8_t **data, size_t *size, const char **reason)
{
    CHAR16 path[NAME_MAX_CHARS + 1];
    *data = NULL;
    *size = 0;
    if (!to_path(name, path))
        return fail(reason, "missing", -1);

    EFI_FILE_HANDLE root = open_root();
    if (root == NULL)
        return fail(reason, "read_failed", -2);
    EFI_FILE_HANDLE file = NULL;
    EFI_STATUS status = root->Open(root, &file, path, EFI_FILE_MODE_READ, 0);
    root->Close(root);
    if (status == EFI_NOT_FOUND)
        return fail(reason, "missing", -1);
    if (EFI_ERROR(status))
        return fail(reason, "read_failed", -2);

    UINT64 total = 0;
    if (file_size(file, &total) != 0) {
        file->Close(file);
        return fail(reason, "read_failed", -2);
    }
    /* Pages sized for exactly the file, so that plat_free(data, size) frees them all.
     * The rest of the last page is zeroed afterwards (a courtesy for text files, but
     * callers must use *size, not a terminating NUL). */
    UINTN alloc = (UINTN)total;
    uint8_t *buffer = uefi_pages_alloc(alloc);
    if (buffer == NULL) {
        file->Close(file);
        return fail(reason, "no_memory", -3);
    }

    UINT64 done = 0;
    while (done < total) {
        UINTN chunk = (total - done) > READ_CHUNK ? READ_CHUNK : (UINTN)(total - done);
        status = file->Read(file, &chunk, buffer + done);
        if (EFI_ERROR(status) || chunk == 0)
            break;
        done += chunk;
    }
    file->Close(file);
    if (done != total) {
        uefi_pages_free(buffer, alloc);
        return fail(reason, "read_failed", -2);
    }
    UINTN page_end = alloc == 0 ? EFI_PAGE_SIZE
                                : ((alloc + EFI_PAGE_SIZE - 1) / EFI_PAGE_SIZE) * EFI_PAGE_SIZE;
    uefi_zero(buffer + alloc, page_end - alloc);
    *data = buffer;
    *size = (size_t)total;
    if (reason)
        *reason = NULL;
    return 0;
}

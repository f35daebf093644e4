/* Memory: whole pages from the firmware (4 KiB aligned, so 64-byte aligned too). */
#include "uefi_internal.h"
#include "../platform.h"

static UINTN pages_for(UINTN bytes)
{
    return bytes == 0 ? 1 : (bytes + EFI_PAGE_SIZE - 1) / EFI_PAGE_SIZE;
}

void *uefi_pages_alloc(UINTN bytes)
{
    EFI_PHYSICAL_ADDRESS address = 0;
    EFI_STATUS status = BS->AllocatePages(AllocateAnyPages, EfiLoaderData,
                                          pages_for(bytes), &address);
    if (EFI_ERROR(status))
        return NULL;
    return (void *)(UINTN)address;
}

void uefi_pages_free(void *ptr, UINTN bytes)
{
    if (ptr)
        BS->FreePages((EFI_PHYSICAL_ADDRESS)(UINTN)ptr, pages_for(bytes));
}

void uefi_zero(void *dst, UINTN len)
{
    __asm__ volatile("rep stosb" : "+D"(dst), "+c"(len) : "a"(0) : "memory");
}

void *plat_alloc(size_t bytes)
{
    void *ptr = uefi_pages_alloc(bytes);
    if (ptr)
        uefi_zero(ptr, pages_for(bytes) * EFI_PAGE_SIZE);
    return ptr;
}

void plat_free(void *ptr, size_t bytes)
{
    uefi_pages_free(ptr, bytes);
}

/* gnu-efi's libefi (init.o, linked for InitializeLib) already defines memcpy and
 * memset for compiler-generated calls; it has no memmove. CopyMem handles overlap. */
void *memmove(void *dst, const void *src, size_t n)
{
    CopyMem(dst, src, n);
    return dst;
}

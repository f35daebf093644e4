/* ACPI table walk, only as far as the PM timer: RSDP (from the EFI configuration
 * table, ACPI 2.0 GUID first, else 1.0) -> XSDT or RSDT -> FADT ("FACP"). */
#include "uefi_internal.h"

/* Offsets in the tables (ACPI 6.x, unchanged since 2.0). */
#define RSDP_REVISION 15
#define RSDP_RSDT 16
#define RSDP_LENGTH 20
#define RSDP_XSDT 24
#define SDT_LENGTH 4
#define SDT_HEADER 36
#define FADT_PM_TMR_BLK 76
#define FADT_FLAGS 112
#define FADT_X_PM_TMR_BLK 208
#define FADT_TMR_VAL_EXT (1u << 8)
#define GAS_SPACE_MEMORY 0
#define GAS_SPACE_IO 1

static UINT32 read_u32(const UINT8 *p)
{
    return (UINT32)p[0] | ((UINT32)p[1] << 8) | ((UINT32)p[2] << 16) | ((UINT32)p[3] << 24);
}

static UINT64 read_u64(const UINT8 *p)
{
    return (UINT64)read_u32(p) | ((UINT64)read_u32(p + 4) << 32);
}

static int checksum_ok(const UINT8 *p, UINT32 len)
{
    UINT8 sum = 0;
    for (UINT32 i = 0; i < len; i++)
        sum = (UINT8)(sum + p[i]);
    return sum == 0;
}

static int same_bytes(const UINT8 *a, const char *b, UINTN n)
{
    for (UINTN i = 0; i < n; i++)
        if (a[i] != (UINT8)b[i])
            return 0;
    return 1;
}

static int same_guid(const EFI_GUID *a, const EFI_GUID *b)
{
    return CompareMem(a, b, sizeof(EFI_GUID)) == 0;
}

static const UINT8 *find_rsdp(void)
{
    EFI_GUID acpi20 = ACPI_20_TABLE_GUID;
    EFI_GUID acpi10 = ACPI_TABLE_GUID;
    const UINT8 *v1 = NULL;
    for (UINTN i = 0; i < ST->NumberOfTableEntries; i++) {
        EFI_CONFIGURATION_TABLE *entry = &ST->ConfigurationTable[i];
        const UINT8 *rsdp = entry->VendorTable;
        if (rsdp == NULL || !same_bytes(rsdp, "RSD PTR ", 8) || !checksum_ok(rsdp, 20))
            continue;
        if (same_guid(&entry->VendorGuid, &acpi20))
            return rsdp;
        if (same_guid(&entry->VendorGuid, &acpi10))
            v1 = rsdp;
    }
    return v1;
}

/* A system description table at a physical address, checked; NULL when invalid. */
static const UINT8 *table_at(UINT64 address, const char *signature)
{
    const UINT8 *table = (const UINT8 *)(UINTN)address;
    if (table == NULL || !same_bytes(table, signature, 4))
        return NULL;
    UINT32 len = read_u32(table + SDT_LENGTH);
    if (len < SDT_HEADER || !checksum_ok(table, len))
        return NULL;
    return table;
}

static const UINT8 *find_fadt(const UINT8 *rsdp)
{
    const UINT8 *root = NULL;
    UINTN entry_size = 4;
    if (rsdp[RSDP_REVISION] >= 2 && read_u32(rsdp + RSDP_LENGTH) >= 32) {
        root = table_at(read_u64(rsdp + RSDP_XSDT), "XSDT");
        entry_size = 8;
    }
    if (root == NULL) {
        root = table_at(read_u32(rsdp + RSDP_RSDT), "RSDT");
        entry_size = 4;
    }
    if (root == NULL)
        return NULL;
    UINT32 len = read_u32(root + SDT_LENGTH);
    for (UINT32 off = SDT_HEADER; off + entry_size <= len; off += (UINT32)entry_size) {
        UINT64 address = entry_size == 8 ? read_u64(root + off) : read_u32(root + off);
        const UINT8 *fadt = table_at(address, "FACP");
        if (fadt)
            return fadt;
    }
    return NULL;
}

int uefi_acpi_pm_timer(struct uefi_pm_timer *timer)
{
    const UINT8 *rsdp = find_rsdp();
    if (rsdp == NULL)
        return -1;
    const UINT8 *fadt = find_fadt(rsdp);
    if (fadt == NULL)
        return -1;
    UINT32 len = read_u32(fadt + SDT_LENGTH);
    if (len < FADT_FLAGS + 4)
        return -1;
    timer->bits = (read_u32(fadt + FADT_FLAGS) & FADT_TMR_VAL_EXT) ? 32 : 24;

    if (len >= FADT_X_PM_TMR_BLK + 12) {
        const UINT8 *gas = fadt + FADT_X_PM_TMR_BLK;
        UINT64 address = read_u64(gas + 4);
        if (address != 0 && (gas[0] == GAS_SPACE_IO || gas[0] == GAS_SPACE_MEMORY)) {
            timer->in_io_space = gas[0] == GAS_SPACE_IO;
            timer->address = address;
            return 0;
        }
    }
    UINT32 port = read_u32(fadt + FADT_PM_TMR_BLK);
    if (port == 0)
        return -1;
    timer->in_io_space = 1;
    timer->address = port;
    return 0;
}

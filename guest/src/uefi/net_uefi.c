/* platform.h's network transport on UEFI: the firmware's own stack.
 *   1. NICs: handles with the Simple Network Protocol (the NIC's UEFI driver: OVMF's
 *      VirtioNetDxe, iPXE's option ROM for e1000); ConnectController(recursive) on each so
 *      that MNP, ARP, IP4, DHCP4 and TCP4 bind above it.
 *   2. Address: EFI_IP4_CONFIG2_PROTOCOL on the first handle with a TCP4 service binding;
 *      policy set to DHCP unless an address is already there, then polled until the
 *      station address is not 0.0.0.0 (deadline from the calibrated TSC).
 *   3. One TCP4 child at a time: Configure (UseDefaultAddress), Connect, Transmit,
 *      Receive; each token's event is polled with CheckEvent while Tcp4->Poll drives the
 *      NIC, against a TSC deadline. A timeout aborts the connection (Configure(NULL)),
 *      which completes any pending token, so no token outlives its call.
 * gnu-efi has TCP4 and IP4 but not IP4_CONFIG2: the few declarations needed are below. */
#include "uefi_internal.h"
#include "../platform.h"

/* ---- EFI_IP4_CONFIG2_PROTOCOL (UEFI 2.x, section 28.5) ---------------------------- */
#define IP4_CONFIG2_GUID \
    {0x5b446ed1, 0xe30b, 0x4faa, {0x87, 0x1a, 0x36, 0x54, 0xec, 0xa3, 0x60, 0x80}}
#define IP4_CONFIG2_DATA_INTERFACE_INFO 0
#define IP4_CONFIG2_DATA_POLICY 1
#define IP4_CONFIG2_POLICY_STATIC 0
#define IP4_CONFIG2_POLICY_DHCP 1

struct ip4_config2;
typedef EFI_STATUS(EFIAPI *ip4_config2_set_data)(struct ip4_config2 *self, UINT32 type,
                                                 UINTN size, VOID *data);
typedef EFI_STATUS(EFIAPI *ip4_config2_get_data)(struct ip4_config2 *self, UINT32 type,
                                                 UINTN *size, VOID *data);
struct ip4_config2 {
    ip4_config2_set_data SetData;
    ip4_config2_get_data GetData;
    VOID *RegisterDataNotify;
    VOID *UnregisterDataNotify;
};

struct ip4_config2_interface_info {
    CHAR16 Name[32];
    UINT8 IfType;
    UINT32 HwAddressSize;
    EFI_MAC_ADDRESS HwAddress;
    EFI_IPv4_ADDRESS StationAddress;
    EFI_IPv4_ADDRESS SubnetMask;
    UINT32 RouteTableSize;
    VOID *RouteTable;
};

/* ---- state --------------------------------------------------------------------------- */
#define RECV_MAX (16u * 1024u * 1024u)
/* The shortest wait for a DHCP address: OVMF's takes about 4 s under QEMU (its first
 * exchange seems lost and DHCP retransmits after 4 s), longer than a per-read timeout. */
#define DHCP_MIN_MS 15000u
/* TCP receive buffer, hence the window offered to the server. Small on purpose: iPXE's
 * e1000 driver (OVMF's SNP for -device e1000) has a short receive ring, and a larger
 * window let QEMU's user network send bursts that overflowed it; each lost segment cost a
 * ~1 s retransmission timeout (0.8 MB/s at 2 MiB, 2.3 MB/s at 64 KiB, 7-10 MB/s at 16 KiB
 * under TCG; see guest/docs/network.md). */
#define TCP_RCV_BUF (16u * 1024u)
#define TCP_SND_BUF (256u * 1024u)

static EFI_GUID snp_guid = EFI_SIMPLE_NETWORK_PROTOCOL_GUID;
static EFI_GUID tcp4_sb_guid = EFI_TCP4_SERVICE_BINDING_PROTOCOL;
static EFI_GUID tcp4_guid = EFI_TCP4_PROTOCOL;
static EFI_GUID ip4_config2_guid = IP4_CONFIG2_GUID;

static int net_state;                       /* 0 untried, 1 up, -1 down */
static const char *net_reason;
static struct plat_net_info net_info;
static EFI_HANDLE net_handle;               /* carries the TCP4 service binding */

struct connection {
    int open;
    int configured;
    EFI_HANDLE child;
    EFI_TCP4 *tcp;
    EFI_EVENT event;
    EFI_TCP4_CONNECTION_TOKEN connect;
    EFI_TCP4_IO_TOKEN io;
    EFI_TCP4_TRANSMIT_DATA tx;
    EFI_TCP4_RECEIVE_DATA rx;
    EFI_TCP4_CONFIG_DATA config;
    EFI_TCP4_OPTION option;
};
static struct connection conn0;

/* ---- time ---------------------------------------------------------------------------- */
static uint64_t deadline_after(uint32_t ms)
{
    uint64_t hz = uefi_tsc_hz ? uefi_tsc_hz : 2000000000u;
    return plat_cycles() + hz / 1000u * ms;
}

static int passed(uint64_t deadline)
{
    return plat_cycles() >= deadline;
}

static uint32_t ms_since(uint64_t start)
{
    uint64_t hz = uefi_tsc_hz ? uefi_tsc_hz : 2000000000u;
    return (uint32_t)((plat_cycles() - start) / (hz / 1000u));
}

/* ---- interface and address ----------------------------------------------------------- */
static UINTN handles_with(EFI_GUID *guid, EFI_HANDLE **handles)
{
    UINTN count = 0;
    *handles = NULL;
    if (EFI_ERROR(BS->LocateHandleBuffer(ByProtocol, guid, NULL, &count, handles)))
        return 0;
    return count;
}

static void connect_all(EFI_HANDLE *handles, UINTN count)
{
    for (UINTN i = 0; i < count; i++)
        BS->ConnectController(handles[i], NULL, NULL, TRUE);
}

static int get_interface(struct ip4_config2 *cfg2, struct ip4_config2_interface_info *info)
{
    /* The route table follows the structure in the same buffer. */
    static UINT8 buffer[2048];
    UINTN size = sizeof buffer;
    if (EFI_ERROR(cfg2->GetData(cfg2, IP4_CONFIG2_DATA_INTERFACE_INFO, &size, buffer)))
        return -1;
    CopyMem(info, buffer, sizeof *info);
    return 0;
}

static int has_address(const struct ip4_config2_interface_info *info)
{
    const UINT8 *a = info->StationAddress.Addr;
    return (a[0] | a[1] | a[2] | a[3]) != 0;
}

static int bring_up(uint32_t timeout_ms)
{
    uint64_t start = plat_cycles();
    EFI_HANDLE *handles;
    UINTN nics = handles_with(&snp_guid, &handles);
    if (nics == 0) {
        /* The boot manager may not have connected the NIC's PCI device: connect all. */
        EFI_HANDLE *all = NULL;
        UINTN count = 0;
        if (!EFI_ERROR(BS->LocateHandleBuffer(AllHandles, NULL, NULL, &count, &all))) {
            connect_all(all, count);
            BS->FreePool(all);
        }
        nics = handles_with(&snp_guid, &handles);
    }
    if (nics == 0) {
        net_reason = "no_nic";
        return -1;
    }
    connect_all(handles, nics);
    BS->FreePool(handles);

    UINTN count = handles_with(&tcp4_sb_guid, &handles);
    if (count == 0) {
        net_reason = "no_nic";     /* a NIC, but no TCP/IP stack above it */
        return -1;
    }
    net_handle = handles[0];
    BS->FreePool(handles);
    net_info.nic = 0;
    net_info.nic_count = (uint32_t)count;

    struct ip4_config2 *cfg2 = NULL;
    if (EFI_ERROR(BS->HandleProtocol(net_handle, &ip4_config2_guid, (void **)&cfg2)) ||
        cfg2 == NULL) {
        net_reason = "no_dhcp";
        return -1;
    }
    struct ip4_config2_interface_info info;
    UINT32 policy = IP4_CONFIG2_POLICY_STATIC;
    UINTN size = sizeof policy;
    cfg2->GetData(cfg2, IP4_CONFIG2_DATA_POLICY, &size, &policy);
    net_info.source = policy == IP4_CONFIG2_POLICY_DHCP ? "dhcp" : "static";
    if (get_interface(cfg2, &info) != 0 || !has_address(&info) ||
        policy != IP4_CONFIG2_POLICY_DHCP) {
        if (policy != IP4_CONFIG2_POLICY_DHCP) {
            policy = IP4_CONFIG2_POLICY_DHCP;
            cfg2->SetData(cfg2, IP4_CONFIG2_DATA_POLICY, sizeof policy, &policy);
            net_info.source = "dhcp";
        }
        uint64_t deadline = deadline_after(timeout_ms > DHCP_MIN_MS ? timeout_ms : DHCP_MIN_MS);
        for (;;) {
            if (get_interface(cfg2, &info) == 0 && has_address(&info))
                break;
            if (passed(deadline)) {
                net_reason = "no_dhcp";
                return -1;
            }
            BS->Stall(1000);
        }
    }
    for (int i = 0; i < 6; i++)
        net_info.mac[i] = info.HwAddress.Addr[i];
    for (int i = 0; i < 4; i++)
        net_info.ip[i] = info.StationAddress.Addr[i];
    net_info.setup_ms = ms_since(start);
    return 0;
}

int plat_net_info(uint32_t timeout_ms, struct plat_net_info *info, const char **reason)
{
    if (net_state == 0)
        net_state = bring_up(timeout_ms) == 0 ? 1 : -1;
    if (net_state < 0) {
        *reason = net_reason;
        return -1;
    }
    *info = net_info;
    return 0;
}

/* ---- TCP ------------------------------------------------------------------------------ */
/* Polls until the token's event fires or the deadline passes. Returns 1 when it fired. */
static int wait_token(struct connection *c, uint64_t deadline)
{
    for (;;) {
        if (BS->CheckEvent(c->event) == EFI_SUCCESS)
            return 1;
        if (passed(deadline))
            return 0;
        c->tcp->Poll(c->tcp);
    }
}

/* Aborts the connection: every pending token completes (EFI_ABORTED) and is collected. */
static void abort_connection(struct connection *c)
{
    if (c->configured) {
        c->tcp->Configure(c->tcp, NULL);
        c->configured = 0;
        BS->CheckEvent(c->event);
    }
}

void plat_net_close(int handle)
{
    struct connection *c = &conn0;
    if (handle != 0 || !c->open)
        return;
    abort_connection(c);
    if (c->event)
        BS->CloseEvent(c->event);
    if (c->child) {
        EFI_SERVICE_BINDING *sb = NULL;
        if (!EFI_ERROR(BS->HandleProtocol(net_handle, &tcp4_sb_guid, (void **)&sb)) && sb)
            sb->DestroyChild(sb, c->child);
    }
    ZeroMem(c, sizeof *c);
}

static int open_fail(const char **reason, const char *word)
{
    *reason = word;
    plat_net_close(0);
    return -1;
}

int plat_net_open(const uint8_t ip[4], uint16_t port, uint32_t timeout_ms,
                  const char **reason)
{
    struct connection *c = &conn0;
    if (net_state != 1) {
        *reason = "no_nic";
        return -1;
    }
    if (c->open)
        plat_net_close(0);
    ZeroMem(c, sizeof *c);
    c->open = 1;
    EFI_SERVICE_BINDING *sb = NULL;
    if (EFI_ERROR(BS->HandleProtocol(net_handle, &tcp4_sb_guid, (void **)&sb)) || !sb ||
        EFI_ERROR(sb->CreateChild(sb, &c->child)) ||
        EFI_ERROR(BS->HandleProtocol(c->child, &tcp4_guid, (void **)&c->tcp)) ||
        EFI_ERROR(BS->CreateEvent(0, 0, NULL, NULL, &c->event)))
        return open_fail(reason, "refused");

    uint64_t deadline = deadline_after(timeout_ms);
    c->option.ReceiveBufferSize = TCP_RCV_BUF;
    c->option.SendBufferSize = TCP_SND_BUF;
    c->option.MaxSynBackLog = 1;
    c->option.ConnectionTimeout = (timeout_ms + 999) / 1000;
    c->option.DataRetries = 3;
    c->option.FinTimeout = 1;
    c->option.TimeWaitTimeout = 1;
    c->option.KeepAliveProbes = 0;
    c->option.KeepAliveTime = 7200;
    c->option.KeepAliveInterval = 75;
    c->option.EnableNagle = FALSE;
    c->option.EnableTimeStamp = FALSE;
    c->option.EnableWindowScaling = TRUE;
    c->option.EnableSelectiveAck = FALSE;
    c->option.EnablePAthMtuDiscovery = FALSE;
    c->config.TypeOfService = 0;
    c->config.TimeToLive = 64;
    c->config.AccessPoint.UseDefaultAddress = TRUE;
    c->config.AccessPoint.StationPort = 0;
    for (int i = 0; i < 4; i++)
        c->config.AccessPoint.RemoteAddress.Addr[i] = ip[i];
    c->config.AccessPoint.RemotePort = port;
    c->config.AccessPoint.ActiveFlag = TRUE;
    c->config.ControlOption = &c->option;
    for (;;) {
        EFI_STATUS status = c->tcp->Configure(c->tcp, &c->config);
        if (!EFI_ERROR(status))
            break;
        /* EFI_NO_MAPPING: the address is still being configured; anything else is fatal. */
        if (status != EFI_NO_MAPPING || passed(deadline))
            return open_fail(reason, status == EFI_NO_MAPPING ? "timeout" : "refused");
        BS->Stall(1000);
    }
    c->configured = 1;

    c->connect.CompletionToken.Event = c->event;
    c->connect.CompletionToken.Status = EFI_NOT_READY;
    if (EFI_ERROR(c->tcp->Connect(c->tcp, &c->connect)))
        return open_fail(reason, "refused");
    if (!wait_token(c, deadline))
        return open_fail(reason, "timeout");
    EFI_STATUS status = c->connect.CompletionToken.Status;
    if (status == EFI_TIMEOUT)
        return open_fail(reason, "timeout");
    if (EFI_ERROR(status))
        return open_fail(reason, "refused");
    return 0;
}

int plat_net_send(int handle, const void *data, size_t len, uint32_t timeout_ms,
                  const char **reason)
{
    struct connection *c = &conn0;
    const UINT8 *p = data;
    if (handle != 0 || !c->configured) {
        *reason = "reset";
        return -1;
    }
    while (len > 0) {
        UINT32 chunk = len > RECV_MAX ? RECV_MAX : (UINT32)len;
        ZeroMem(&c->tx, sizeof c->tx);
        c->tx.Push = TRUE;
        c->tx.DataLength = chunk;
        c->tx.FragmentCount = 1;
        c->tx.FragmentTable[0].FragmentLength = chunk;
        c->tx.FragmentTable[0].FragmentBuffer = (VOID *)p;
        c->io.CompletionToken.Event = c->event;
        c->io.CompletionToken.Status = EFI_NOT_READY;
        c->io.Packet.TxData = &c->tx;
        if (EFI_ERROR(c->tcp->Transmit(c->tcp, &c->io))) {
            *reason = "reset";
            return -1;
        }
        if (!wait_token(c, deadline_after(timeout_ms))) {
            abort_connection(c);
            *reason = "timeout";
            return -1;
        }
        if (EFI_ERROR(c->io.CompletionToken.Status)) {
            *reason = "reset";
            return -1;
        }
        p += chunk;
        len -= chunk;
    }
    return 0;
}

long plat_net_recv(int handle, void *buf, size_t cap, uint32_t timeout_ms, const char **reason)
{
    struct connection *c = &conn0;
    if (handle != 0 || !c->configured) {
        *reason = "reset";
        return -1;
    }
    UINT32 want = cap > RECV_MAX ? RECV_MAX : (UINT32)cap;
    ZeroMem(&c->rx, sizeof c->rx);
    c->rx.DataLength = want;
    c->rx.FragmentCount = 1;
    c->rx.FragmentTable[0].FragmentLength = want;
    c->rx.FragmentTable[0].FragmentBuffer = buf;
    c->io.CompletionToken.Event = c->event;
    c->io.CompletionToken.Status = EFI_NOT_READY;
    c->io.Packet.RxData = &c->rx;
    EFI_STATUS status = c->tcp->Receive(c->tcp, &c->io);
    if (status == EFI_CONNECTION_FIN)
        return 0;
    if (EFI_ERROR(status)) {
        *reason = "reset";
        return -1;
    }
    if (!wait_token(c, deadline_after(timeout_ms))) {
        abort_connection(c);
        *reason = "timeout";
        return -1;
    }
    status = c->io.CompletionToken.Status;
    if (status == EFI_CONNECTION_FIN)
        return 0;
    if (EFI_ERROR(status)) {
        *reason = "reset";
        return -1;
    }
    return (long)c->rx.DataLength;
}

/* platform.h's network transport on Linux: POSIX sockets, timeouts with poll(2).
 * The host has no NIC to find and no DHCP to run: plat_net_info reports the loopback
 * (source=host). BM_NET=none or BM_NET=nodhcp in the environment makes it fail with
 * no_nic or no_dhcp, so that the tests can reach those fallbacks too. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "../platform.h"

int plat_net_info(uint32_t timeout_ms, struct plat_net_info *info, const char **reason)
{
    (void)timeout_ms;
    const char *mode = getenv("BM_NET");
    if (mode && strcmp(mode, "none") == 0) {
        *reason = "no_nic";
        return -1;
    }
    if (mode && strcmp(mode, "nodhcp") == 0) {
        *reason = "no_dhcp";
        return -1;
    }
    memset(info, 0, sizeof *info);
    info->nic = 0;
    info->nic_count = 1;
    info->ip[0] = 127;
    info->ip[3] = 1;
    info->source = "host";
    return 0;
}

/* Waits for events on fd; 1 when ready, 0 on timeout, -1 on error. */
static int wait_fd(int fd, short events, uint32_t timeout_ms)
{
    struct pollfd p = {fd, events, 0};
    for (;;) {
        int r = poll(&p, 1, (int)timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        return r < 0 ? -1 : (r > 0 ? 1 : 0);
    }
}

int plat_net_open(const uint8_t ip[4], uint16_t port, uint32_t timeout_ms,
                  const char **reason)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        *reason = "refused";
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    memcpy(&addr.sin_addr, ip, 4);
    int r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    if (r != 0 && errno != EINPROGRESS) {
        *reason = errno == ETIMEDOUT ? "timeout" : "refused";
        close(fd);
        return -1;
    }
    if (r != 0) {
        int ready = wait_fd(fd, POLLOUT, timeout_ms);
        int err = 0;
        socklen_t len = sizeof err;
        if (ready == 0) {
            *reason = "timeout";
            close(fd);
            return -1;
        }
        if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            *reason = err == ETIMEDOUT ? "timeout" : "refused";
            close(fd);
            return -1;
        }
    }
    return fd;
}

int plat_net_send(int conn, const void *data, size_t len, uint32_t timeout_ms,
                  const char **reason)
{
    const char *p = data;
    while (len > 0) {
        int ready = wait_fd(conn, POLLOUT, timeout_ms);
        if (ready <= 0) {
            *reason = ready == 0 ? "timeout" : "reset";
            return -1;
        }
        ssize_t n = send(conn, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            *reason = "reset";
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

long plat_net_recv(int conn, void *buf, size_t cap, uint32_t timeout_ms, const char **reason)
{
    for (;;) {
        int ready = wait_fd(conn, POLLIN, timeout_ms);
        if (ready <= 0) {
            *reason = ready == 0 ? "timeout" : "reset";
            return -1;
        }
        ssize_t n = recv(conn, buf, cap, 0);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            continue;
        *reason = "reset";
        return -1;
    }
}

void plat_net_close(int conn)
{
    close(conn);
}

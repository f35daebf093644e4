"""Which process is at the other end of a loopback TCP connection we accepted.

Where QEMU cannot inherit a premade connection (Windows), the plugin listens on 127.0.0.1
and must not take an impostor that connects first for the console: it accepts only a
connection whose far end the QEMU it started owns. Linux reads /proc (the socket's inode
among the process's file descriptors); Windows asks GetExtendedTcpTable for the owning pid.
"""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys
from pathlib import Path
from typing import Any

Address = tuple[str, int]


def owner_pid(peer: Address, ours: Address, candidate: int) -> bool | None:
    """Whether process ``candidate`` owns the socket ``peer`` connected to ``ours``; None
    when this host cannot tell (then the caller decides)."""
    try:
        if sys.platform.startswith("linux"):
            return _linux_owns(peer, ours, candidate)
        if sys.platform == "win32":  # pragma: no cover - Windows
            pid = windows_owner(peer, ours, ctypes.windll.iphlpapi)  # type: ignore[attr-defined]
            return None if pid is None else pid == candidate
    except OSError:
        return None
    return None


# -- Linux -----------------------------------------------------------------------------------
def _hex_address(address: Address) -> str:
    """/proc/net/tcp's form of an IPv4 address: little-endian hex, then the port."""
    packed = socket.inet_aton(address[0])
    return f"{struct.unpack('<I', packed)[0]:08X}:{address[1]:04X}"


def socket_inode(peer: Address, ours: Address, table: str) -> int | None:
    """The inode of the socket whose local end is ``peer`` and remote end ``ours``."""
    local, remote = _hex_address(peer), _hex_address(ours)
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 9 and fields[1] == local and fields[2] == remote:
            return int(fields[9])
    return None


def _linux_owns(peer: Address, ours: Address, pid: int) -> bool | None:
    inode = socket_inode(peer, ours, Path("/proc/net/tcp").read_text())
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                return True
        except OSError:
            continue
    return False


# -- Windows ---------------------------------------------------------------------------------
AF_INET = 2
TCP_TABLE_OWNER_PID_ALL = 5
_ROW = struct.Struct("<6I")  # state, local addr, local port, remote addr, remote port, pid


def windows_owner(peer: Address, ours: Address, iphlpapi: Any) -> int | None:
    """The pid owning the TCP socket ``peer`` -> ``ours`` from GetExtendedTcpTable."""
    size = ctypes.c_uint32(0)
    iphlpapi.GetExtendedTcpTable(None, ctypes.byref(size), False, AF_INET,
                                 TCP_TABLE_OWNER_PID_ALL, 0)
    buffer = ctypes.create_string_buffer(size.value)
    if iphlpapi.GetExtendedTcpTable(buffer, ctypes.byref(size), False, AF_INET,
                                    TCP_TABLE_OWNER_PID_ALL, 0) != 0:
        return None
    return find_owner(buffer.raw[: size.value], peer, ours)


def find_owner(table: bytes, peer: Address, ours: Address) -> int | None:
    """Parses a MIB_TCPTABLE_OWNER_PID (a count, then rows; ports in network order)."""
    (count,) = struct.unpack_from("<I", table, 0)
    want = (struct.unpack("<I", socket.inet_aton(peer[0]))[0], socket.htons(peer[1]),
            struct.unpack("<I", socket.inet_aton(ours[0]))[0], socket.htons(ours[1]))
    for index in range(count):
        _, laddr, lport, raddr, rport, pid = _ROW.unpack_from(table, 4 + index * _ROW.size)
        if (laddr, lport & 0xFFFF, raddr, rport & 0xFFFF) == want:
            return int(pid)
    return None

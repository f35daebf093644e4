"""The console connection cannot be forged: QEMU inherits a connection made before it
starts, so a local process that connects first never becomes the console."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_baremetal import peercheck
from pytest_baremetal.targets.qemu import process as process_mod
from pytest_baremetal.targets.qemu.process import Listener, QemuProcess
from pytest_baremetal.targets.qemu.spec import qemu_board

posix_only = pytest.mark.skipif(os.name != "posix", reason="fd passing is POSIX (Windows "
                                "keeps loopback listeners)")

IMPOSTOR = textwrap.dedent("""
    import socket, sys, time
    sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
    sock.sendall(b"[fixture] done lines=3 FORGED\\r\\n")
    print("connected", flush=True)
    sock.settimeout(20)
    try:
        print("closed" if sock.recv(100) == b"" else "data", flush=True)
    except OSError as error:
        print("closed", error, flush=True)
""")


@posix_only
def test_a_process_that_connects_first_is_not_the_console() -> None:
    impostors: list[subprocess.Popen[str]] = []

    def connect_first(address: tuple[str, int]) -> None:
        proc = subprocess.Popen([sys.executable, "-c", IMPOSTOR, address[0], str(address[1])],
                                stdout=subprocess.PIPE, text=True)
        impostors.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "connected"

    listener = Listener.pair(tcp=True, before_connect=connect_first)
    try:
        assert listener.sock is None, "something still listens while QEMU would run"
        assert listener.connected is not None and listener.child_end is not None
        assert isinstance(listener.endpoint, int)
        listener.child_end.sendall(b"from qemu's end\n")
        listener.connected.settimeout(5)
        assert listener.connected.recv(100) == b"from qemu's end\n"  # not the forged line
        out, _ = impostors[0].communicate(timeout=30)
        assert out.startswith("closed"), out
    finally:
        listener.close()
        if listener.connected is not None:
            listener.connected.close()
        for proc in impostors:
            proc.kill()
            proc.wait()


@posix_only
def test_qmp_pair_needs_no_socket_file() -> None:
    listener = Listener.pair()
    try:
        assert listener.sock is None and isinstance(listener.endpoint, int)
        assert listener.child_end is not None and listener.connected is not None
        listener.child_end.sendall(b"{}")
        assert listener.connected.recv(10) == b"{}"
        listener.release_child_end()
        assert listener.child_end is None
        assert listener.connected.recv(10) == b""  # QEMU's end gone: EOF, as on its exit
    finally:
        listener.close()
        if listener.connected is not None:
            listener.connected.close()


@pytest.mark.slow
def read_until(sock: socket.socket, marker: bytes, timeout: float = 120) -> bytes:
    """What the console sends up to and including ``marker``."""
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"console closed early: {data[-300:]!r}"
        data += chunk
    return data


@posix_only
def test_qemu_gets_its_console_as_an_inherited_socket(
        qemu_boot: Callable[..., QemuProcess], fixture_image: Callable[[str], Path]) -> None:
    proc = qemu_boot(qemu_board("auth-tcg", accel="tcg", memory=256), fixture_image("lines 3"))
    cmdline = (proc.log_dir / "qemu.cmdline").read_text()
    assert "socket,id=serial0,fd=" in cmdline and "port=" not in cmdline, cmdline
    assert "socket,id=qmp0,fd=" in cmdline
    assert proc.status() in ("prelaunch", "paused")  # QMP works over the inherited pair
    proc.resume()
    data = read_until(proc.serial_socket, b"done lines=3")
    assert b"[fixture] line 1 of 3" in data
    assert proc.wait(60) == 0


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_listener_path_takes_qemu_not_the_first_caller(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        fixture_image: Callable[[str], Path]) -> None:
    """Where QEMU connects to us (Windows), an impostor that connects first is refused
    because its socket is not QEMU's (here the Linux /proc check stands in for Windows')."""
    monkeypatch.setattr(process_mod, "PREMADE", False)
    impostors: list[subprocess.Popen[str]] = []
    real_open = Listener.open

    def open_then_impostor(name: str, directory: Path | None = None, *,
                           tcp: bool = False) -> Listener:
        listener = real_open(name, directory, tcp=tcp)
        if isinstance(listener.endpoint, tuple):
            host, port = listener.endpoint
            proc = subprocess.Popen([sys.executable, "-c", IMPOSTOR, host, str(port)],
                                    stdout=subprocess.PIPE, text=True)
            impostors.append(proc)
            assert proc.stdout is not None and proc.stdout.readline().strip() == "connected"
        return listener

    monkeypatch.setattr(Listener, "open", staticmethod(open_then_impostor))
    proc = process_mod.launch(qemu_board("auth-listen", accel="tcg", memory=256),
                              fixture_image("lines 3"), tmp_path)
    try:
        assert impostors, "the serial listener was not TCP"
        assert "port=" in (tmp_path / "qemu.cmdline").read_text()
        proc.resume()
        data = read_until(proc.serial_socket, b"done lines=3")
        assert b"FORGED" not in data and b"[fixture] line 1 of 3" in data
        out, _ = impostors[0].communicate(timeout=30)
        assert out.startswith("closed"), out
    finally:
        proc.stop()
        for imp in impostors:
            imp.kill()
            imp.wait()


def test_windows_owner_is_read_from_the_tcp_table() -> None:
    def row(local: tuple[str, int], remote: tuple[str, int], pid: int) -> bytes:
        def addr(a: tuple[str, int]) -> tuple[int, int]:
            return (struct.unpack("<I", socket.inet_aton(a[0]))[0], socket.htons(a[1]))
        return struct.pack("<6I", 5, *addr(local), *addr(remote), pid)

    table = struct.pack("<I", 3) + row(("127.0.0.1", 50001), ("127.0.0.1", 4444), 111) \
        + row(("127.0.0.1", 50002), ("127.0.0.1", 4444), 222) \
        + row(("127.0.0.1", 4444), ("127.0.0.1", 50002), 999)
    assert peercheck.find_owner(table, ("127.0.0.1", 50002), ("127.0.0.1", 4444)) == 222
    assert peercheck.find_owner(table, ("127.0.0.1", 50003), ("127.0.0.1", 4444)) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_linux_owner_check_on_a_real_connection() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    conn, peer = server.accept()
    try:
        assert peercheck.owner_pid(peer, server.getsockname(), os.getpid()) is True
        assert peercheck.owner_pid(peer, server.getsockname(), os.getppid()) is False
    finally:
        for s in (conn, client, server):
            s.close()

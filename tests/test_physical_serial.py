"""The pyserial console transport: reads, writes, and an adapter that vanishes and returns."""

from __future__ import annotations

import os
import time
import tty
from pathlib import Path

import pytest

from pytest_baremetal.errors import ConsoleClosed, SerialError

pytest.importorskip("serial")

from pytest_baremetal.targets.physical.serial_transport import SerialTransport


class Adapter:
    """A pty pair behind a fixed symlink, like /dev/serial/by-id/... for a USB adapter."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tmp = self.link.with_name("tmp-link")
        tmp.symlink_to(os.ttyname(self.slave))
        os.replace(tmp, self.link)

    def unplug(self) -> None:
        self.link.unlink()
        os.close(self.master)
        os.close(self.slave)


def read_until(transport: SerialTransport, needle: bytes, timeout: float = 5) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        seen += transport.read(4096, 0.1)
    return seen


def test_read_and_write(tmp_path: Path) -> None:
    adapter = Adapter(tmp_path / "console")
    transport = SerialTransport(lambda: str(adapter.link), 115200)
    os.write(adapter.master, b"hello\r\n")
    assert b"hello" in read_until(transport, b"hello")
    transport.write(b"prompt\r")
    assert os.read(adapter.master, 100) == b"prompt\r"
    assert transport.read(100, 0.1) == b""
    transport.close()
    adapter.unplug()


def test_survives_the_adapter_vanishing_and_returning(tmp_path: Path) -> None:
    adapter = Adapter(tmp_path / "console")
    transport = SerialTransport(lambda: str(adapter.link), 115200, reconnect=5)
    os.write(adapter.master, b"before\r\n")
    assert b"before" in read_until(transport, b"before")
    adapter.unplug()
    lost = read_until(transport, b"reopening", timeout=2)
    assert b"[bm] console lost on" in lost
    time.sleep(0.5)
    adapter.plug()
    back = read_until(transport, b"back on", timeout=5)
    assert b"[bm] console back on" in back
    os.write(adapter.master, b"after\r\n")
    assert b"after" in read_until(transport, b"after")
    assert transport.reconnects == 1
    transport.close()
    adapter.unplug()


def test_gives_up_after_the_reconnect_window(tmp_path: Path) -> None:
    adapter = Adapter(tmp_path / "console")
    transport = SerialTransport(lambda: str(adapter.link), 115200, reconnect=1)
    adapter.unplug()
    start = time.monotonic()
    with pytest.raises(ConsoleClosed, match="did not come back within 1 s"):
        while time.monotonic() - start < 5:
            transport.read(100, 0.2)
    transport.close()


def test_second_opener_is_refused(tmp_path: Path) -> None:
    adapter = Adapter(tmp_path / "console")
    first = SerialTransport(lambda: str(adapter.link), 115200)
    with pytest.raises(SerialError, match="in use by another process"):
        SerialTransport(lambda: str(adapter.link), 115200, open_timeout=0.5)
    first.close()
    adapter.unplug()

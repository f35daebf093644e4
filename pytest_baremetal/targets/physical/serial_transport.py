"""A console Transport over pyserial that survives the adapter vanishing and coming back.

USB-serial adapters re-enumerate when a board's power cycle browns out the hub, and a
console opened by path then fails with EIO. On a read or write error this transport closes
the port, says so in the console stream (a ``[bm] console lost`` line), and reopens the
same port -- resolved again, so a udev match finds the adapter under its new node -- for up
to ``reconnect`` seconds before it reports :class:`ConsoleClosed`.

Local ports are opened with ``exclusive=True`` (an advisory lock): a second run on the same
host cannot read the same console.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from pytest_baremetal.errors import ConsoleClosed, SerialError

RETRY_S = 0.2


class SerialTransport:
    """``resolve()`` gives a device path or a pyserial URL (``rfc2217://host:port``)."""

    def __init__(self, resolve: Callable[[], str], baud: int, *, reconnect: float = 30.0,
                 name: str = "console", open_timeout: float = 10.0) -> None:
        self._resolve = resolve
        self.baud = baud
        self.reconnect = reconnect
        self.name = name
        self._lock = threading.Lock()
        self._port: Any = None
        self._closed = False
        self._lost_at: float | None = None
        self._notes: list[bytes] = []
        self.port_name = ""
        self.reconnects = 0
        deadline = time.monotonic() + open_timeout
        while True:
            error = self._open()
            if error is None:
                break
            if time.monotonic() >= deadline:
                raise SerialError(f"{name}: cannot open the serial port: {error}")
            time.sleep(RETRY_S)

    def _open(self) -> str | None:
        """Opens the port now; the error text, or None."""
        try:
            name = self._resolve()
        except Exception as error:  # a udev lookup that finds nothing (yet)
            return str(error)
        try:
            kwargs: dict[str, Any] = {"baudrate": self.baud, "timeout": 0}
            if "://" not in name:  # pyserial's rfc2217 refuses write_timeout
                kwargs.update(exclusive=True, write_timeout=5)
            port = serial.serial_for_url(name, **kwargs)
        except (serial.SerialException, OSError, ValueError) as error:
            if "lock" in str(error).lower() or "resource temporarily" in str(error).lower():
                return f"{name} is in use by another process ({error})"
            return f"{name}: {error}"
        self._port = port
        self.port_name = name
        return None

    # -- Transport -----------------------------------------------------------------------
    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self._notes:
            return self._notes.pop(0)
        port = self._current(timeout)
        if port is None:
            return b""
        try:
            port.timeout = max(0.0, timeout)
            first = bytes(port.read(1))
            if not first:
                return b""
            more = min(int(port.in_waiting), max_bytes - 1)
            return first + (bytes(port.read(more)) if more > 0 else b"")
        except (serial.SerialException, OSError, TypeError, AttributeError) as error:
            self._lose(port, error)
            return self._notes.pop(0) if self._notes else b""

    def write(self, data: bytes) -> None:
        port = self._current(self.reconnect)
        if port is None:
            raise ConsoleClosed(f"{self.name}: the serial port is gone ({self.port_name})")
        try:
            port.write(data)
            port.flush()
        except (serial.SerialException, OSError) as error:
            self._lose(port, error)
            raise ConsoleClosed(f"{self.name}: write failed on {self.port_name}: "
                                f"{error}") from error

    def close(self) -> None:
        with self._lock:
            self._closed = True
            port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()

    # -- reconnection --------------------------------------------------------------------
    def _current(self, wait: float) -> Any:
        """The open port, reopening a lost one; None when not back yet (within the window)."""
        if self._closed:
            raise ConsoleClosed(f"{self.name}: console was closed by the host")
        if self._port is not None:
            return self._port
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                if self._closed:
                    raise ConsoleClosed(f"{self.name}: console was closed by the host")
                error = self._open()
            if error is None:
                assert self._lost_at is not None
                gone = time.monotonic() - self._lost_at
                self.reconnects += 1
                self._notes.append(f"\r\n[bm] console back on {self.port_name} after "
                                   f"{gone:.1f} s\r\n".encode())
                self._lost_at = None
                return self._port
            assert self._lost_at is not None
            if time.monotonic() - self._lost_at >= self.reconnect:
                raise ConsoleClosed(f"{self.name}: the serial adapter vanished and did not "
                                    f"come back within {self.reconnect:.0f} s: {error}")
            if time.monotonic() >= deadline:
                return None
            time.sleep(min(RETRY_S, max(0.0, deadline - time.monotonic())))

    def _lose(self, port: Any, error: BaseException) -> None:
        with self._lock:
            if self._closed:
                raise ConsoleClosed(f"{self.name}: console was closed by the host") from error
            if self._port is port:
                self._port = None
                self._lost_at = time.monotonic()
                self._notes.append(f"\r\n[bm] console lost on {self.port_name}: {error}; "
                                   f"reopening for up to {self.reconnect:.0f} s\r\n".encode())
        with contextlib.suppress(Exception):
            port.close()

"""How console bytes travel: the Transport protocol and its socket implementation."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from typing import Protocol, runtime_checkable

from pytest_baremetal.errors import ConsoleClosed


@runtime_checkable
class Transport(Protocol):
    """A byte pipe to a guest's console.

    ``read`` returns at most ``max_bytes`` as soon as any are available, ``b""`` when
    ``timeout`` seconds pass without data, and raises :class:`ConsoleClosed` at end of
    stream. ``write`` sends everything. ``close`` is idempotent.
    """

    def read(self, max_bytes: int, timeout: float) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class BytesTransport:
    """Bytes already in memory (a recording, a benchmark's input): handed out ``chunk``
    bytes at a time, then end of stream."""

    def __init__(self, data: bytes, chunk: int = 65536, end: str = "end of the recording"
                 ) -> None:
        self._data = memoryview(data)
        self._chunk = chunk
        self._end = end
        self._pos = 0

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self._pos >= len(self._data):
            raise ConsoleClosed(self._end)
        chunk = bytes(self._data[self._pos : self._pos + min(max_bytes, self._chunk)])
        self._pos += len(chunk)
        return chunk

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class SocketTransport:
    """A connected stream socket (unix or TCP), e.g. a QEMU serial chardev."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self._sock = sock
        self._closed = threading.Event()
        self.peer = _describe(sock)

    @classmethod
    def connect(cls, address: str | tuple[str, int], timeout: float = 10.0) -> SocketTransport:
        """Connect to a unix socket path or a ``(host, port)`` TCP address."""
        if isinstance(address, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(address)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection(address, timeout=timeout)
        return cls(sock)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if self._closed.is_set():
            raise ConsoleClosed(f"console {self.peer} was closed by the host")
        try:
            ready, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
            if not ready:
                return b""
            data = self._sock.recv(max_bytes)
        except (OSError, ValueError) as exc:
            if self._closed.is_set():
                raise ConsoleClosed(f"console {self.peer} was closed by the host") from exc
            raise ConsoleClosed(f"console {self.peer} failed: {exc}") from exc
        if not data:
            raise ConsoleClosed(f"console {self.peer} reached end of stream")
        return data

    def write(self, data: bytes) -> None:
        if self._closed.is_set():
            raise ConsoleClosed(f"console {self.peer} was closed by the host")
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ConsoleClosed(f"console {self.peer}: write failed: {exc}") from exc

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()


def _describe(sock: socket.socket) -> str:
    try:
        peer = sock.getpeername()
    except OSError:
        return "socket"
    if isinstance(peer, tuple):
        return f"tcp:{peer[0]}:{peer[1]}"
    return f"unix:{peer or sock.getsockname() or '(unnamed)'}"

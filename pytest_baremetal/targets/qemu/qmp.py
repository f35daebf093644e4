"""A small QMP client over a connected stream socket: handshake, commands, events."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from pytest_baremetal.errors import QmpError


@dataclass(frozen=True)
class QmpEvent:
    """An asynchronous QMP event (STOP, SHUTDOWN, RESET...) and when the host saw it."""

    name: str
    data: dict[str, Any]
    received: float


class QmpClient:
    """Speaks QMP on ``sock``; keeps every event it reads in ``events``."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self._sock = sock
        self._timeout = timeout
        self._buffer = b""
        self._lock = threading.Lock()
        self._closed = False
        self.greeting: dict[str, Any] = {}
        self.events: list[QmpEvent] = []

    def handshake(self) -> dict[str, Any]:
        """Read the greeting and leave capabilities-negotiation mode."""
        with self._lock:
            message = self._read(self._timeout)
            if message is None or "QMP" not in message:
                raise QmpError(f"QMP greeting missing or unexpected: {message!r}")
            self.greeting = message
        self.execute("qmp_capabilities")
        return self.greeting

    @property
    def version(self) -> str:
        qemu = self.greeting.get("QMP", {}).get("version", {}).get("qemu", {})
        return f"{qemu.get('major', '?')}.{qemu.get('minor', '?')}.{qemu.get('micro', '?')}"

    def execute(self, command: str, arguments: dict[str, Any] | None = None,
                timeout: float | None = None) -> Any:
        """Run ``command`` and return its ``return`` value (events met on the way are kept)."""
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        deadline = time.monotonic() + (self._timeout if timeout is None else timeout)
        with self._lock:
            self._send(request)
            while True:
                message = self._read(deadline - time.monotonic())
                if message is None:
                    raise QmpError(f"QMP {command}: no answer")
                if "return" in message:
                    return message["return"]
                if "error" in message:
                    error = message["error"]
                    raise QmpError(f"QMP {command}: {error.get('class')}: {error.get('desc')}")

    def poll(self, timeout: float = 0.0) -> list[QmpEvent]:
        """Read whatever events arrive within ``timeout``; returns the new ones."""
        before = len(self.events)
        deadline = time.monotonic() + timeout
        with self._lock:
            try:
                while self._read(deadline - time.monotonic(), events_only=True) is not None:
                    pass
            except QmpError:
                pass
        return self.events[before:]

    def event_names(self) -> list[str]:
        return [event.name for event in self.events]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._sock.close()

    # -- wire -------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        if self._closed:
            raise QmpError("QMP connection is closed")
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\r\n")
        except OSError as error:
            raise QmpError(f"QMP connection lost: {error}") from error

    def _read(self, timeout: float, events_only: bool = False) -> dict[str, Any] | None:
        """The next non-event message, or None at the deadline; events are stored."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            line, sep, rest = self._buffer.partition(b"\n")
            if sep:
                self._buffer = rest
                if not line.strip():
                    continue
                message = json.loads(line)
                if "event" in message:
                    self.events.append(QmpEvent(message["event"], message.get("data", {}),
                                                time.monotonic()))
                    if events_only:
                        return dict(message)
                    continue
                return dict(message)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closed:
                return None
            ready, _, _ = select.select([self._sock], [], [], remaining)
            if not ready:
                return None
            try:
                chunk = self._sock.recv(65536)
            except OSError as error:
                raise QmpError(f"QMP connection lost: {error}") from error
            if not chunk:
                raise QmpError("QMP connection closed by QEMU")
            self._buffer += chunk

"""Last-resort teardown for lab resources: switch boards off, stop services, release places.

Dut.close() powers a board off when the session closes; these callbacks run at interpreter
exit (and on SIGTERM/SIGINT through the QEMU reaper's handlers, which end in exit) for
whatever a failure left behind. Each callback runs once, the newest first; errors are
swallowed so one broken relay does not keep another board on.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from collections.abc import Callable

_lock = threading.Lock()
_callbacks: dict[int, Callable[[], None]] = {}
_next = 0
_installed = False


def register(callback: Callable[[], None]) -> int:
    global _next, _installed
    with _lock:
        _next += 1
        _callbacks[_next] = callback
        if not _installed:
            atexit.register(run_all)
            _installed = True
        return _next


def run_before_reaper() -> None:
    """Moves our exit hook after the QEMU reaper's, so it runs first (atexit is LIFO): the
    relay is switched off while the processes it talks to still exist."""
    with _lock:
        if _installed:
            atexit.unregister(run_all)
            atexit.register(run_all)


def unregister(handle: int) -> None:
    with _lock:
        _callbacks.pop(handle, None)


def run(handle: int) -> None:
    with _lock:
        callback = _callbacks.pop(handle, None)
    if callback is not None:
        callback()


def run_all() -> None:
    with _lock:
        items = sorted(_callbacks.items(), reverse=True)
        _callbacks.clear()
    for _, callback in items:
        with contextlib.suppress(Exception):
            callback()

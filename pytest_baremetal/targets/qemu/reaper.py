"""Registry of live child processes, killed at interpreter exit and on SIGTERM/SIGINT.

A signal ignored when the plugin loads (SIGINT for `pytest ... &` in a script) stays
ignored. The signal handlers chain to whatever was installed before, so pytest still sees its
``KeyboardInterrupt`` after the children are gone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from pytest_baremetal import lifeline

_lock = threading.Lock()
_live: dict[int, subprocess.Popen[Any]] = {}
_installed = False
_previous: dict[int, Any] = {}


def register(proc: subprocess.Popen[Any]) -> None:
    """Track ``proc`` (started in its own process group) until :func:`unregister`."""
    with _lock:
        _live[proc.pid] = proc
    lifeline.watch(proc)
    _install()


def unregister(proc: subprocess.Popen[Any]) -> None:
    with _lock:
        _live.pop(proc.pid, None)
    lifeline.unwatch(proc)


def live() -> list[int]:
    """Pids still registered (for tests and diagnostics)."""
    with _lock:
        return sorted(_live)


def kill_group(proc: subprocess.Popen[Any], sig: int | None = None) -> None:
    """Send ``sig`` (default SIGKILL) to the process's group; no-op if it is reaped."""
    if proc.returncode is not None:
        return
    if hasattr(os, "killpg"):
        try:
            os.killpg(proc.pid, signal.SIGKILL if sig is None else sig)
            return
        except (ProcessLookupError, PermissionError):
            pass
    try:
        if sig is None or sig == getattr(signal, "SIGKILL", None):
            proc.kill()
        else:
            proc.terminate()
    except OSError:
        pass


def kill_all() -> None:
    """Kill and reap every registered process now."""
    with _lock:
        procs = list(_live.values())
        _live.clear()
    for proc in procs:
        kill_group(proc)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
            lifeline.unwatch(proc)


def _handler(signum: int, frame: FrameType | None) -> None:
    kill_all()
    previous = _previous.get(signum)
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    elif signum == signal.SIGINT:
        raise KeyboardInterrupt
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install() -> None:
    """atexit always; signal handlers only from the main thread (Python's rule)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    atexit.register(kill_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            previous = signal.getsignal(signum)
            if previous == signal.SIG_IGN:
                continue  # e.g. `pytest ... &` in a script: the signal is not for us
            _previous[signum] = previous
            handler: Callable[[int, FrameType | None], None] = _handler
            signal.signal(signum, handler)
        except (ValueError, OSError):
            pass

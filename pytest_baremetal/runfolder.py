"""This run's private folder on the host (per pytest process), removed at exit.

Board files write ``{run}`` for paths that belong to one run only (a simulated box's ptys,
disk and TFTP root), so two runs of the same board on one host never share them.

A run killed outright (SIGKILL) cannot remove its folder: each run holds an ``flock`` on
``<folder>/.owner``, which the kernel drops however the run dies, and the next run that
makes a folder removes every folder of this user whose owner lock it can take.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no owner lock, no sweep (removal at exit only)
    fcntl = None  # type: ignore[assignment]

PLACEHOLDER = "{run}"
_lock = threading.Lock()
_root: Path | None = None
_owner = 0
_owner_fd: int | None = None  # the held lock on <root>/.owner, open while we live
OWNER = ".owner"


def root() -> Path:
    """Created on first use (short: simulated boxes put unix sockets in it)."""
    global _root, _owner
    with _lock:
        if _root is None or _owner != os.getpid():  # a forked child makes its own
            base = tempfile.gettempdir()
            if len(base) > 40 and os.path.isdir("/tmp"):
                base = "/tmp"
            remove_stale(Path(base))
            _root = Path(tempfile.mkdtemp(prefix="bm-run-", dir=base))
            _owner = os.getpid()
            _hold(_root)
            atexit.register(_remove, _root, _owner)
        return _root


def folder(name: str) -> Path:
    """``<root>/<name>`` for a board (name reduced to safe characters)."""
    return root() / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "board")


def expand(value: Any, name: str) -> Any:
    """``value`` with ``{run}`` in every string replaced by :func:`folder` of ``name``."""
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, str(folder(name))) if PLACEHOLDER in value else value
    if isinstance(value, dict):
        return {key: expand(item, name) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, name) for item in value]
    return value


def _remove(path: Path, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def _hold(folder: Path) -> None:
    """Locks ``folder/.owner`` for this process's life (locked before it has its name, so
    no sweep ever finds it unlocked)."""
    global _owner_fd
    if fcntl is None:
        return
    tmp = folder / (OWNER + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, f"pid {os.getpid()}\n".encode())
    os.rename(tmp, folder / OWNER)
    if _owner_fd is not None:  # a forked child: its parent's lock is not its own
        with contextlib.suppress(OSError):
            os.close(_owner_fd)
    _owner_fd = fd


def remove_stale(base: Path) -> list[Path]:
    """Removes this user's run folders in ``base`` whose run is gone (their owner lock is
    free); returns them. Folders of live runs, of other users, or without an owner file
    (older versions, or being made) are left alone."""
    removed: list[Path] = []
    if fcntl is None:
        return removed
    for folder in base.glob("bm-run-*"):
        with contextlib.suppress(OSError):
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            fd = os.open(folder / OWNER, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its run is alive
            finally:
                os.close(fd)  # (drops our lock too; a second sweeper may remove it as well)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed

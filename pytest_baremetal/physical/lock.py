"""One run per board on a host: an advisory lock file per board name.

The lock is an ``flock`` on ``<lock dir>/<board>.lock`` holding the owner's pid and start
time; the kernel drops it when the process dies, so a crashed run never leaves a board
locked. Across hosts, labgrid places do the same job.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from pathlib import Path

from pytest_baremetal.errors import BootError


def lock_dir() -> Path:
    base = os.environ.get("BM_LOCK_DIR") or os.path.join(tempfile.gettempdir(),
                                                          "pytest-baremetal-locks")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


class BoardLock:
    def __init__(self, board: str, directory: Path | None = None) -> None:
        self.board = board
        self.path = (directory or lock_dir()) / f"{board}.lock"
        self._fd: int | None = None

    def acquire(self, wait: float = 0.0) -> None:
        """Takes the lock, waiting up to ``wait`` s; BootError naming the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self.holder()
                    os.close(fd)
                    raise BootError(f"board {self.board} is in use by another run ({holder}); "
                                    f"waited {wait:.0f} s (set physical.lock_wait to wait "
                                    "longer)") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}\n".encode())
        self._fd = fd

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown holder"
        except OSError:
            return "unknown holder"

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

"""One run per lab resource on a host: an advisory lock file per serial adapter, relay
channel or device, not per board name (two board files naming one box still exclude each
other; two simulated boxes of one board in two runs do not).

The lock is an ``flock`` on ``<lock dir>/<resource>.lock`` holding the owner's pid and
start time; the kernel drops it when the process dies, so a crashed run never leaves a
resource locked. The folder is shared by every user (sticky, like /tmp): lock files are
opened with O_NOFOLLOW and must be regular files, so a planted symlink or FIFO cannot make
us truncate or block on someone else's file. Across hosts, labgrid places do the same job.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from pytest_baremetal.errors import BootError, LockError
from pytest_baremetal.targets.physical.schema import PhysicalSpec, PortSpec


def lock_dir() -> Path:
    base = os.environ.get("BM_LOCK_DIR") or os.path.join(tempfile.gettempdir(),
                                                          "pytest-baremetal-locks")
    path = Path(base)
    try:
        path.mkdir(parents=True)
        os.chmod(path, 0o1777)  # every user's runs share it; each removes only its own
    except FileExistsError:
        pass
    if path.is_symlink() or not path.is_dir():
        raise BootError(f"lock folder {path} is not a plain folder (a symlink?): remove it "
                        "or set BM_LOCK_DIR to a folder of your own")
    return path


def lock_name(resource: str) -> str:
    """A file name for ``resource``: readable, and unique by a hash of the full text."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", resource).strip("_.")[-60:] or "resource"
    return f"{slug}-{hashlib.sha256(resource.encode()).hexdigest()[:12]}.lock"


class ResourceLock:
    """The lock on one resource (``what`` names it in messages: "board X's console")."""

    def __init__(self, resource: str, directory: Path | None = None, what: str = "") -> None:
        self.resource = resource
        self.what = what or resource
        self.path = (directory or lock_dir()) / lock_name(resource)
        self._fd: int | None = None

    def acquire(self, wait: float = 0.0) -> None:
        """Takes the lock, waiting up to ``wait`` s; BootError naming the holder."""
        fd = _open_lock_file(self.path)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self.holder()
                    os.close(fd)
                    raise LockError(f"{self.what} is in use by another run ({holder}); "
                                    f"waited {wait:.0f} s (set physical.lock_wait to wait "
                                    "longer)") from None
                time.sleep(0.2)
        with contextlib.suppress(OSError):  # read-only (another user's file): no holder note
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}\n".encode())
        self._fd = fd

    def holder(self) -> str:
        with contextlib.suppress(OSError):
            fd = _open_lock_file(self.path, create=False)
            try:
                return os.read(fd, 200).decode(errors="replace").strip() or "unknown holder"
            finally:
                os.close(fd)
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


class BoardLock:
    """The locks on every resource of a board, taken in a fixed order (no deadlock between
    two runs wanting the same two resources); all or none."""

    def __init__(self, board: str, directory: Path | None = None,
                 resources: Iterable[tuple[str, str]] = ()) -> None:
        self.board = board
        wanted = dict(resources) or {f"board:{board}": f"board {board}"}
        self.locks = [ResourceLock(key, directory, f"board {board}" if what == key else what)
                      for key, what in sorted(wanted.items())]

    def acquire(self, wait: float = 0.0) -> None:
        deadline = time.monotonic() + wait
        taken: list[ResourceLock] = []
        try:
            for lock in self.locks:
                lock.acquire(max(0.0, deadline - time.monotonic()))
                taken.append(lock)
        except BaseException:
            for lock in taken:
                lock.release()
            raise

    def release(self) -> None:
        for lock in self.locks:
            lock.release()

    @property
    def held(self) -> bool:
        return all(lock.held for lock in self.locks)


def _open_lock_file(path: Path, create: bool = True) -> int:
    flags = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
        | getattr(os, "O_CLOEXEC", 0) | (os.O_CREAT if create else 0)
    try:
        try:
            fd = os.open(path, os.O_RDWR | flags, 0o666)
        except PermissionError:  # another user's lock file: flock works read-only too
            fd = os.open(path, os.O_RDONLY | flags)
    except OSError as error:
        raise BootError(f"cannot open lock file {path} ({error.strerror}; a symlink there is "
                        "refused): remove it or set BM_LOCK_DIR to a folder of your own"
                        ) from error
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise BootError(f"lock file {path} is not a regular file: remove it or set "
                        "BM_LOCK_DIR to a folder of your own")
    if info.st_uid == os.geteuid() and info.st_mode & 0o777 != 0o666:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # other users' runs must be able to lock it too (umask)
    return fd


def resources_of(board: str, spec: PhysicalSpec) -> list[tuple[str, str]]:
    """(lock key, description) of each local resource a board uses: its console adapter and
    its relay channel. A device path is keyed by what it resolves to, so two names of one
    adapter (by-id and ttyUSB0) are one resource."""
    out = [(_port_key(spec.console.port), f"board {board}'s console "
            f"{spec.console.port.describe()}")]
    lcus = spec.power.lcus
    if lcus is not None:
        out.append((f"{_port_key(lcus.port)}#channel{lcus.channel}",
                    f"board {board}'s relay {lcus.port.describe()} channel {lcus.channel}"))
    return out


def _port_key(port: PortSpec) -> str:
    if port.device is not None:
        return "serial:" + os.path.realpath(port.device)
    return "serial:" + port.describe()

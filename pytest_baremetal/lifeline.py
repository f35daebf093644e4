"""Child processes that cannot outlive the run, however the run ends (SIGKILL included).

Every launcher (QEMU, dnsmasq, the simulated box, labgrid's coordinator and exporter with
their ser2net) starts its child with :func:`child_options` and registers it with the
reaper, which calls :func:`watch` / :func:`unwatch`. Three layers, because each alone
has a hole:

- an own process group (POSIX session / Windows new process group): a terminal Ctrl-C
  reaches pytest only, and pytest stops its children in order;
- Linux ``PR_SET_PDEATHSIG`` = SIGKILL in the child, set only when forking from the main
  thread (the signal fires when the *thread* that forked exits, not the process);
- a watchdog: a tiny Python process holding the read end of a pipe whose write end only
  this process has. The kernel closes it when we die, however we die; the watchdog then
  SIGKILLs every process group still registered (grandchildren such as ser2net included).
  On Windows, a job object with KILL_ON_JOB_CLOSE does the same.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from typing import Any

PR_SET_PDEATHSIG = 1

#: Runs in the watchdog (stdlib only, started with -I -S so it needs nothing installed).
WATCHDOG = """
import os, signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
groups = set()
buf = b""
while True:
    try:
        data = os.read(0, 4096)
    except InterruptedError:
        continue
    except OSError:
        break
    if not data:
        break
    buf += data
    *lines, buf = buf.split(b"\\n")
    for line in lines:
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        elif line[:1] == b"-":
            groups.discard(int(line[1:]))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""

_lock = threading.Lock()
_watched: set[int] = set()
_watchdog: subprocess.Popen[bytes] | None = None
_job: Any = None
_closed = False


def child_options() -> dict[str, Any]:
    """Keyword arguments for ``subprocess.Popen`` of a child that dies with this process."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    options: dict[str, Any] = {"start_new_session": True}
    prctl = _prctl()
    if prctl is not None and threading.current_thread() is threading.main_thread():
        options["preexec_fn"] = _die_with(os.getpid(), prctl)
    return options


def dies_with_this_process() -> Any:
    """A ``preexec_fn`` for a child that stays in our process group but gets SIGKILL when
    we die (Linux, from the main thread); None where that is not possible."""
    prctl = _prctl()
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    return _die_with(os.getpid(), prctl)


def watch(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc``'s process group (POSIX) or the process tree (Windows) if we die."""
    if sys.platform == "win32":
        with contextlib.suppress(OSError):
            _assign_to_job(proc)
        return
    with _lock:
        _watched.add(proc.pid)
        _send(f"+{proc.pid}\n")


def unwatch(proc: subprocess.Popen[Any]) -> None:
    """``proc`` is reaped: forget its group (call after ``wait()``)."""
    if sys.platform == "win32":
        return
    with _lock:
        if proc.pid in _watched:
            _watched.discard(proc.pid)
            _send(f"-{proc.pid}\n")


def start() -> None:
    """Start the watchdog now instead of at the first child: it then lives where the
    process is now (a thread about to enter another network namespace calls this first)."""
    if sys.platform == "win32":
        return
    with _lock:
        _send("")


def watchdog_pid() -> int | None:
    """The watchdog's pid (for tests and diagnostics)."""
    return _watchdog.pid if _watchdog is not None else None


# -- POSIX -----------------------------------------------------------------------------------
def _send(line: str) -> None:
    """Under ``_lock``. Starts the watchdog on first use, or again if it has died (then it
    is told every group still watched)."""
    global _watchdog
    if _closed:  # exiting: the reaper has already stopped everything
        return
    for _ in range(2):
        if _watchdog is None or _watchdog.poll() is not None:
            _watchdog = _start_watchdog()
            if _watchdog is None:
                return
            line = "".join(f"+{pid}\n" for pid in sorted(_watched))
        try:
            assert _watchdog.stdin is not None
            _watchdog.stdin.write(line.encode())
            _watchdog.stdin.flush()
            return
        except (OSError, ValueError):
            _watchdog = None


def _start_watchdog() -> subprocess.Popen[bytes] | None:
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", WATCHDOG],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                close_fds=True)
    except OSError:
        return None
    if not getattr(_start_watchdog, "hooked", False):
        atexit.register(_close_watchdog)
        _start_watchdog.hooked = True  # type: ignore[attr-defined]
    return proc


def _close_watchdog() -> None:
    """At a normal exit: the watchdog ends (and kills whatever is still registered)."""
    global _closed
    with _lock:
        _closed = True
    proc = _watchdog
    if proc is not None and proc.stdin is not None:
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _die_with(parent: int, prctl: Any) -> Any:
    """The child's pre-exec step: SIGKILL when the parent dies; if it is already gone
    (killed between fork and here), do not start at all."""

    def preexec() -> None:  # pragma: no cover - runs in the child
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:
            os._exit(1)

    return preexec


# -- Windows ---------------------------------------------------------------------------------
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9


class _BasicLimits(ctypes.Structure):
    _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64),
                ("PerJobUserTimeLimit", ctypes.c_int64),
                ("LimitFlags", ctypes.c_uint32),
                ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t),
                ("ActiveProcessLimit", ctypes.c_uint32),
                ("Affinity", ctypes.c_size_t),
                ("PriorityClass", ctypes.c_uint32),
                ("SchedulingClass", ctypes.c_uint32)]


class _IoCounters(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
        "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]


class _ExtendedLimits(ctypes.Structure):
    _fields_ = [("BasicLimitInformation", _BasicLimits),
                ("IoInfo", _IoCounters),
                ("ProcessMemoryLimit", ctypes.c_size_t),
                ("JobMemoryLimit", ctypes.c_size_t),
                ("PeakProcessMemoryUsed", ctypes.c_size_t),
                ("PeakJobMemoryUsed", ctypes.c_size_t)]


def make_kill_on_close_job(kernel32: Any) -> Any:
    """A job object whose processes all die when its last handle closes (when we die)."""
    job = kernel32.CreateJobObjectW(None, None)
    if not job:
        raise OSError("CreateJobObjectW failed")
    limits = _ExtendedLimits()
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    if not kernel32.SetInformationJobObject(job, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION,
                                            ctypes.byref(limits), ctypes.sizeof(limits)):
        kernel32.CloseHandle(job)
        raise OSError("SetInformationJobObject failed")
    return job


def assign_to_job(kernel32: Any, job: Any, proc: subprocess.Popen[Any]) -> None:
    handle = getattr(proc, "_handle", None)
    if handle is None or not kernel32.AssignProcessToJobObject(job, int(handle)):
        raise OSError(f"AssignProcessToJobObject failed for pid {proc.pid}")


def _assign_to_job(proc: subprocess.Popen[Any]) -> None:  # pragma: no cover - Windows
    global _job
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    with _lock:
        if _job is None:
            _job = make_kill_on_close_job(kernel32)  # never closed: the OS closes it as we die
        assign_to_job(kernel32, _job, proc)

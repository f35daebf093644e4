"""A QEMU process started paused, with its serial and QMP sockets, and a sure teardown.

The plugin listens (unix socket, or TCP on 127.0.0.1 where AF_UNIX is missing); QEMU
connects as a client, so no port can clash and no early output is lost.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from pytest_baremetal import lifeline, peercheck
from pytest_baremetal.boards import Board
from pytest_baremetal.errors import BootError, QmpError
from pytest_baremetal.firmware import FirmwareFiles
from pytest_baremetal.targets.qemu import command, reaper
from pytest_baremetal.targets.qemu.command import Endpoint
from pytest_baremetal.targets.qemu.qmp import QmpClient
from pytest_baremetal.targets.qemu.spec import QemuSpec

UNIX_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS; keep a margin
STDERR_TAIL = 25


#: QEMU's serial device writes one byte per send(). On a Unix socket each byte is a buffer
#: of its own charged ~1 KiB, so a reader lagging by a few hundred bytes blocks QEMU, the
#: UART stops draining, and the firmware's serial driver times out and drops or repeats
#: bytes (measured: 1.8 KB of 4.9 KB lost with a reader 8 s late). TCP coalesces the bytes
#: and its buffer grows: the serial console always goes over TCP on loopback.
RECEIVE_BUFFER = 4 << 20
#: POSIX: QEMU inherits connections made before it starts; elsewhere it connects to us
PREMADE = os.name == "posix" and hasattr(socket, "socketpair")


class Listener:
    """A listening socket QEMU connects to, and the endpoint to give QEMU; or (POSIX, see
    :meth:`pair`) a connection made before QEMU starts, whose far end QEMU inherits."""

    def __init__(self, sock: socket.socket | None, endpoint: Endpoint, owned_dir: Path | None,
                 *, connected: socket.socket | None = None,
                 child_end: socket.socket | None = None) -> None:
        self.sock = sock
        self.endpoint = endpoint
        self._owned_dir = owned_dir
        #: our end of a premade connection (no one else can ever become the console)
        self.connected = connected
        #: QEMU's end: passed to it as fd=N and closed here once QEMU has it
        self.child_end = child_end

    @classmethod
    def pair(cls, *, tcp: bool = False,
             before_connect: Callable[[tuple[str, int]], None] | None = None) -> Listener:
        """A connection QEMU inherits as ``-chardev socket,fd=N``: nothing listens while
        QEMU runs, so no local process can connect first and pose as QEMU. ``tcp``: over
        loopback TCP (see RECEIVE_BUFFER), checking that the accepted peer is our own end
        (``before_connect`` runs once the listener is up: tests connect an impostor there)."""
        if not tcp:
            ours, theirs = socket.socketpair()
            return cls(None, theirs.fileno(), None, connected=ours, child_end=theirs)
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ours = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            server.bind(("127.0.0.1", 0))
            server.listen(8)
            server.settimeout(10)
            if before_connect is not None:
                before_connect(server.getsockname())
            ours.connect(server.getsockname())
            mine = ours.getsockname()
            while True:
                theirs, peer = server.accept()
                if peer == mine:
                    break
                theirs.close()  # an impostor got in first: not our connection
        except BaseException:
            ours.close()
            raise
        finally:
            server.close()
        theirs.setblocking(True)
        return cls(None, theirs.fileno(), None, connected=ours, child_end=theirs)

    def release_child_end(self) -> None:
        """QEMU has its copy (or will never start): ours goes, so its exit reads as EOF."""
        if self.child_end is not None:
            self.child_end.close()
            self.child_end = None

    @classmethod
    def open(cls, name: str, directory: Path | None = None, *, tcp: bool = False) -> Listener:
        """Unix socket ``<dir>/<name>`` (a fresh short temp dir by default), else (or with
        ``tcp``) TCP on 127.0.0.1 with a free port."""
        if hasattr(socket, "AF_UNIX") and not tcp:
            owned = None
            if directory is None:
                directory = owned = Path(tempfile.mkdtemp(prefix="bm-", dir=_short_tmp()))
            path = directory / name
            if len(os.fsencode(path)) <= UNIX_PATH_MAX:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.bind(str(path))
                    sock.listen(1)
                except BaseException:
                    sock.close()
                    raise
                return cls(sock, str(path), owned)
            if owned is not None:
                shutil.rmtree(owned, ignore_errors=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # inherited by the accepted socket: room for seconds of output if the reader lags
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        return cls(sock, ("127.0.0.1", int(sock.getsockname()[1])), None)

    def close(self) -> None:
        self.release_child_end()
        if self.sock is not None:
            self.sock.close()
        if isinstance(self.endpoint, str):
            with contextlib.suppress(OSError):
                os.unlink(self.endpoint)
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None


def _short_tmp() -> str | None:
    """A temp root short enough for socket paths (TMPDIR can be very long on macOS)."""
    base = tempfile.gettempdir()
    if len(base) > 60 and os.path.isdir("/tmp"):
        return "/tmp"
    return base


def tail(path: Path, lines: int = STDERR_TAIL) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class QemuProcess:
    """One QEMU: ``start()`` (paused, connected), ``resume()``, ``status()``, ``wait()``,
    ``stop()``. Stderr goes to ``<log_dir>/qemu.stderr``; ``argv`` to ``qemu.cmdline``."""

    def __init__(self, argv: Sequence[str], serial_listener: Listener, qmp_listener: Listener,
                 log_dir: Path, connect_timeout: float = 15.0) -> None:
        self.argv = list(argv)
        self.log_dir = Path(log_dir)
        self.stderr_path = self.log_dir / "qemu.stderr"
        self.connect_timeout = connect_timeout
        self._listeners = (serial_listener, qmp_listener)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._serial: socket.socket | None = None
        self._serial_taken = False
        self._qmp_sock: socket.socket | None = None
        self.qmp: QmpClient | None = None
        self.started_at: float | None = None
        self.last_status: str | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn QEMU and accept its serial and QMP connections; BootError if it dies."""
        if self._proc is not None:
            raise RuntimeError("QemuProcess.start() called twice")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.log_dir / "qemu.cmdline").write_text(_display(self.argv) + "\n", encoding="utf-8")
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        kwargs = lifeline.child_options()
        inherited = [lst.child_end.fileno() for lst in self._listeners
                     if lst.child_end is not None]
        if inherited:
            kwargs["pass_fds"] = inherited
        try:
            self.started_at = time.monotonic()
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                          stdout=self._stderr, stderr=self._stderr, **kwargs)
        except OSError as error:
            for listener in self._listeners:
                listener.close()
                if listener.connected is not None:
                    listener.connected.close()
            self._close_files()
            raise BootError(f"cannot start QEMU {self.argv[0]}: {error}",
                            self.stderr_path) from error
        reaper.register(self._proc)
        for listener in self._listeners:
            listener.release_child_end()
        try:
            self._accept()
            assert self._qmp_sock is not None
            self.qmp = QmpClient(self._qmp_sock)
            try:
                self.qmp.handshake()
            except QmpError as error:
                assert self._proc is not None
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=2)
                if self._proc.poll() is not None:  # e.g. a bad option: it never got going
                    raise self._died("QEMU exited before connecting its qmp and serial "
                                     "socket") from error
                raise self._died(f"QMP handshake failed: {error}") from error
        except BaseException:
            self.stop()
            raise
        finally:
            for listener in self._listeners:
                listener.close()

    def _accept(self) -> None:
        serial_l, qmp_l = self._listeners
        self._serial, self._qmp_sock = serial_l.connected, qmp_l.connected
        pending = {lst.sock: name for lst, name in ((serial_l, "serial"), (qmp_l, "qmp"))
                   if lst.connected is None and lst.sock is not None}
        deadline = time.monotonic() + self.connect_timeout
        while pending:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._died("QEMU exited before connecting its "
                                 + " and ".join(sorted(pending.values())) + " socket")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BootError(f"QEMU did not connect its {', '.join(pending.values())} "
                                f"socket within {self.connect_timeout:.0f} s\n"
                                f"{tail(self.stderr_path)}", self.stderr_path)
            ready, _, _ = select.select(list(pending), [], [], min(0.1, remaining))
            for sock in ready:
                conn, peer = sock.accept()
                if not self._from_qemu(conn, peer, sock):
                    conn.close()  # another local process got in first: not the console
                    continue
                conn.setblocking(True)
                if pending.pop(sock) == "serial":
                    self._serial = conn
                else:
                    self._qmp_sock = conn

    def _from_qemu(self, conn: socket.socket, peer: Any, listener: socket.socket) -> bool:
        """A TCP peer must be our QEMU (where the host can tell); a unix socket lives in a
        private folder already."""
        if conn.family != socket.AF_INET or self._proc is None:
            return True
        ours = listener.getsockname()
        verdict = peercheck.owner_pid((peer[0], int(peer[1])), (ours[0], int(ours[1])),
                                      self._proc.pid)
        return verdict is not False

    def _died(self, what: str) -> BootError:
        code = self._proc.wait(timeout=5) if self._proc is not None else None
        self._flush()
        return BootError(f"{what} (exit code {code}); QEMU stderr:\n{tail(self.stderr_path)}",
                         self.stderr_path)

    def resume(self) -> None:
        """Let the paused guest run (QMP ``cont``)."""
        try:
            self._require_qmp().execute("cont")
        except QmpError as error:
            if self._proc is not None and self.wait(2.0) is not None:
                raise self._died(f"QEMU exited before the guest could run ({error})") from error
            raise

    def status(self) -> str | None:
        """QMP ``query-status`` (running, paused, internal-error, shutdown...), or None if
        QEMU has exited or QMP no longer answers."""
        if self._proc is None or self._proc.poll() is not None or self.qmp is None:
            return None
        try:
            self.last_status = str(self._require_qmp().execute("query-status",
                                                               timeout=3)["status"])
        except QmpError:
            return None
        return self.last_status

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for QEMU to exit; its exit code, or None if still up.
        QMP events arriving meanwhile are collected in ``qmp.events``."""
        if self._proc is None:
            return None
        deadline = time.monotonic() + timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                return code
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self.qmp is not None:
                self.qmp.poll(min(0.1, remaining))
            else:
                time.sleep(min(0.1, remaining))

    def stop(self, grace: float = 3.0) -> int | None:
        """QMP quit, then SIGTERM, then SIGKILL to the process group; always reaps.
        Idempotent; returns the exit code (None if never started)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if self.qmp is not None:
                with contextlib.suppress(QmpError, OSError):
                    self.qmp.execute("quit", timeout=1.0)
            self.wait(grace)
        if proc is not None and proc.poll() is None:
            reaper.kill_group(proc, _sigterm())
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        if proc is not None and proc.poll() is None:
            reaper.kill_group(proc)
            proc.wait()
        if proc is not None:
            reaper.unregister(proc)
        if self.qmp is not None:
            self.qmp.close()
        elif self._qmp_sock is not None:
            self._qmp_sock.close()
        if self._serial is not None and not self._serial_taken:
            self._serial.close()
        self._close_files()
        return proc.returncode if proc is not None else None

    def __enter__(self) -> QemuProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- accessors --------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def serial_socket(self) -> socket.socket:
        """The connected serial socket (still owned by this process: stop() closes it)."""
        if self._serial is None:
            raise RuntimeError("QEMU is not started")
        return self._serial

    def returncode_probe(self) -> Callable[[], bool]:
        """A callable telling whether QEMU is still running."""
        return lambda: self._proc is not None and self._proc.poll() is None

    def take_serial_socket(self) -> socket.socket:
        """The serial socket, handed over: the caller closes it (e.g. its Transport)."""
        sock = self.serial_socket
        self._serial_taken = True
        return sock

    def stderr_text(self) -> str:
        self._flush()
        try:
            return self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def _require_qmp(self) -> QmpClient:
        if self.qmp is None:
            raise QmpError("QEMU is not started")
        return self.qmp

    def _flush(self) -> None:
        if self._stderr is not None and not self._stderr.closed:
            self._stderr.flush()

    def _close_files(self) -> None:
        if self._stderr is not None:
            self._stderr.close()


def _sigterm() -> int:
    return int(signal.SIGTERM)


def _display(argv: Sequence[str]) -> str:
    """For humans reading the log only; QEMU is never started through a shell."""
    return shlex.join(argv)


def launch(board: Board[QemuSpec], image: Path | None, log_dir: Path, *,
           firmware: FirmwareFiles | None = None, binary: str | None = None, disk_bus: str = "ide",
           connect_timeout: float = 15.0) -> QemuProcess:
    """Listen, build the argv, start QEMU: returns it connected and still paused."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    serial = Listener.pair(tcp=True) if PREMADE else Listener.open("serial", tcp=True)
    try:
        qmp = Listener.pair() if PREMADE else Listener.open("qmp.sock")
    except BaseException:
        serial.close()
        raise
    try:
        argv = command.build(board, image, serial.endpoint, qmp.endpoint, log_dir,
                             firmware=firmware, binary=binary, disk_bus=disk_bus)
    except BaseException:
        qmp.close()
        serial.close()
        raise
    proc = QemuProcess(argv, serial, qmp, log_dir, connect_timeout=connect_timeout)
    proc.start()
    return proc

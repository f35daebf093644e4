"""A board's lab resources for one run: its lock (or labgrid place), its simulator, its
power, its PXE service, and how to find its serial ports. Made once per board per process
and released at exit; the board is switched off on release."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from pytest_baremetal.console import Console
from pytest_baremetal.errors import BootError, SerialError
from pytest_baremetal.targets.physical import cleanup, udev
from pytest_baremetal.targets.physical.lock import BoardLock, resources_of
from pytest_baremetal.targets.physical.power import BoardPower, make_driver
from pytest_baremetal.targets.physical.pxe import Dnsmasq, dnsmasq_argv
from pytest_baremetal.targets.physical.schema import PhysicalSpec, PortSpec
from pytest_baremetal.targets.physical.simbox import SimBox

if TYPE_CHECKING:
    from pytest_baremetal.targets.physical.remote import RemotePlace

Resolver = Callable[[], str]


def coordinator_address() -> str | None:
    """``LG_COORDINATOR``, else ``--lg-coordinator`` from the command line.

    The option belongs to labgrid's pytest plugin, which does not export it; reading argv is
    the fallback until plugin.py sets LG_COORDINATOR from the option."""
    value = os.environ.get("LG_COORDINATOR")
    if value:
        return value
    args = sys.argv
    for i, arg in enumerate(args):
        if arg.startswith("--lg-coordinator="):
            return arg.split("=", 1)[1] or None
        if arg == "--lg-coordinator" and i + 1 < len(args):
            return args[i + 1]
    return None


class Lab:
    def __init__(self, name: str, spec: PhysicalSpec, lock_wait: float = 0.0) -> None:
        self.name = name
        self.spec = spec
        self.lock: BoardLock | None = None
        self.place: RemotePlace | None = None
        self.sim: SimBox | None = None
        self.dnsmasq: Dnsmasq | None = None
        self.dnsmasq_dir: Path | None = None
        #: the console of the latest boot, closed before the next one opens the port
        self.console: Console | None = None
        self._remote_ports: dict[str, str] = {}
        self._handle = cleanup.register(self.release)
        _release_on_sigterm()
        try:
            self._acquire(lock_wait)
            self.power = BoardPower(make_driver(spec.power, name, self._lcus_resolver()),
                                    spec.power.sense, name)
        except BaseException:
            cleanup.run(self._handle)
            raise
        cleanup.run_before_reaper()

    def _acquire(self, lock_wait: float) -> None:
        address = coordinator_address()
        if self.spec.place is not None and address is not None:
            from pytest_baremetal.targets.physical.remote import RemotePlace

            place = RemotePlace(address, self.spec.place, lock_wait)
            self.place = place
            place.acquire()
            self._remote_ports = place.serial_ports()
        elif self.spec.place is not None and self.spec.remote_ports:
            raise BootError(f"board {self.name} uses resources of labgrid place "
                            f"{self.spec.place}: pass --lg-coordinator HOST:PORT "
                            "(or set LG_COORDINATOR)")
        else:
            self.lock = BoardLock(self.name, resources=resources_of(self.name, self.spec))
            self.lock.acquire(lock_wait)
        if self.spec.sim is not None and not self._remote_ports:
            self.sim = SimBox(self.spec)
            self.sim.start()

    # -- serial ports --------------------------------------------------------------------
    def resolver(self, port: PortSpec) -> Resolver:
        if port.remote is not None:
            remote = port.remote

            def from_place() -> str:
                if remote not in self._remote_ports:
                    known = ", ".join(sorted(self._remote_ports)) or "none"
                    raise BootError(f"labgrid place {self.spec.place} has no "
                                    f"NetworkSerialPort named {remote!r} (has: {known})")
                return self._remote_ports[remote]

            return from_place
        if port.rfc2217 is not None:
            url = f"rfc2217://{port.rfc2217}"
            return lambda: url
        if port.device is not None:
            path = port.device

            def by_path() -> str:
                if not os.path.exists(path):
                    raise SerialError(f"serial device {path} does not exist (unplugged?)")
                return str(path)

            return by_path
        wanted = port.udev
        return lambda: udev.find_node(wanted)

    def _lcus_resolver(self) -> Resolver:
        lcus = self.spec.power.lcus
        return self.resolver(lcus.port) if lcus is not None else (lambda: "")

    def console_resolver(self) -> Resolver:
        return self.resolver(self.spec.console.port)

    # -- PXE service ---------------------------------------------------------------------
    def ensure_pxe_service(self) -> None:
        pxe = self.spec.boot.pxe
        if pxe is None or pxe.server != "dnsmasq" or self.dnsmasq is not None:
            return
        assert self.spec.mac is not None and pxe.subnet is not None
        run_dir = Path(tempfile.mkdtemp(prefix=f"bm-dnsmasq-{self.name}-"))
        argv = dnsmasq_argv(pxe.tftp_root, pxe.bootfile, self.spec.mac, pxe.subnet,
                            pxe.interface, run_dir)
        self.dnsmasq = Dnsmasq(argv, run_dir / "dnsmasq.log")
        self.dnsmasq_dir = run_dir
        self.dnsmasq.start()

    # -- the end -------------------------------------------------------------------------
    def release(self) -> None:
        """Power off, then stop services and give the board back; every step is tried."""
        power = getattr(self, "power", None)
        if power is not None:
            with contextlib.suppress(Exception):
                power.off()
            with contextlib.suppress(Exception):
                power.close()
        if self.console is not None:
            self.console.close()
        if self.dnsmasq is not None:
            self.dnsmasq.stop()
            if self.dnsmasq_dir is not None:
                shutil.rmtree(self.dnsmasq_dir, ignore_errors=True)
        if self.sim is not None:
            self.sim.stop()
        if self.place is not None:
            with contextlib.suppress(Exception):
                self.place.release()
        if self.lock is not None:
            self.lock.release()
        _labs.pop(self.name, None)


_labs: dict[str, Lab] = {}
_previous_sigterm: Any = None
_sigterm_installed = False


def _release_on_sigterm() -> None:
    """A cancelled job (SIGTERM) still switches its boards off and gives their labgrid
    places and reservations back: the default action would end the process without its
    exit hooks. Chains to the handler it replaces (the QEMU reaper's, or the default)."""
    global _previous_sigterm, _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        return  # ignored by whoever started us: not ours to act on
    with contextlib.suppress(ValueError, OSError):
        _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_installed = True


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    cleanup.run_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def lab_for(name: str, spec: PhysicalSpec) -> Lab:
    lab = _labs.get(name)
    if lab is None:
        lab = _labs[name] = Lab(name, spec, spec.lock_wait)
    return lab


def release_all() -> None:
    for lab in list(_labs.values()):
        cleanup.run(lab._handle)

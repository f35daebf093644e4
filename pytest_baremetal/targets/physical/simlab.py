"""A labgrid lab on 127.0.0.1 around one simulated box, for boards reached through a place.

``SimLab`` starts, in order: the simulated box (``sim.py``: a QEMU behind a pty console and
an LCUS relay on a pty), a ``labgrid-coordinator`` on a free loopback port, and a
``labgrid-exporter`` that exports both ptys as ``RawSerialPort`` resources (the exporter
serves each through ``ser2net`` as a ``NetworkSerialPort`` while the place is acquired).
It then creates the place, matches both resources, and tags it ``board=<place>`` so that
reservations find it. ``stop()`` ends every process it started, ser2net included.

ser2net is started by the exporter with ``tcp,PORT`` (every interface); a wrapper put first
on the exporter's PATH rewrites that to ``tcp,127.0.0.1,PORT`` so nothing leaves loopback.

By hand (then run ``pytest suites --target=sim-skylake-remote`` with the printed
``LG_COORDINATOR`` in the environment, or ``--lg-coordinator``)::

    python -m pytest_baremetal.targets.physical.simlab boards/sim-skylake-remote.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from pytest_baremetal import lifeline
from pytest_baremetal.errors import BootError
from pytest_baremetal.targets.physical.remote import labgrid_tool
from pytest_baremetal.targets.physical.schema import PhysicalSpec, SimSpec
from pytest_baremetal.targets.physical.simbox import SimBox
from pytest_baremetal.targets.qemu import reaper

START_TIMEOUT = 30.0
EXPORTER = "bm-sim"
GROUP = "box"
_LISTENING = re.compile(r"listening on \S*:(\d+)")
_SER2NET_WRAPPER = """#!/bin/bash
# Written by pytest_baremetal.targets.physical.simlab: labgrid's exporter starts ser2net on every
# interface (tcp,PORT); keep it on loopback (tcp,127.0.0.1,PORT).
args=()
for a in "$@"; do args+=("${{a/,tcp,/,tcp,127.0.0.1,}}"); done
exec {ser2net} "${{args[@]}}"
"""


def ser2net_binary() -> str:
    found = shutil.which("ser2net") or ("/usr/sbin/ser2net"
                                        if os.path.exists("/usr/sbin/ser2net") else None)
    if found is None:
        raise BootError("ser2net is not installed (apt-get install ser2net): labgrid's "
                        "exporter serves serial ports through it")
    return found


class SimLab:
    """The simulated box of ``spec`` behind a local coordinator and exporter.

    ``spec`` is the remote board's physical section (its place, its console and relay
    resource names, its relay channel, PXE or disk); ``run_dir`` is where the simulator
    keeps its ptys, disk and power LED (the paths the board file reads)."""

    def __init__(self, spec: PhysicalSpec, run_dir: Path, work_dir: Path | None = None) -> None:
        if spec.place is None:
            raise BootError(f"{spec.where}: a SimLab needs physical.place")
        self.place = spec.place
        self.run_dir = run_dir
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="bm-simlab-"))
        self.spec = dataclasses.replace(spec, sim=SimSpec(run_dir=run_dir))
        self.console_name = spec.console.port.remote or "console"
        lcus = spec.power.lcus
        self.relay_name = (lcus.port.remote or "relay") if lcus is not None else None
        self.sim = SimBox(self.spec)
        self.coordinator_proc: subprocess.Popen[bytes] | None = None
        self.exporter_proc: subprocess.Popen[bytes] | None = None
        self.address = ""
        #: process groups started (simulator + QEMU, coordinator, exporter + ser2net)
        self.groups: list[int] = []
        self._logs: list[IO[bytes]] = []

    # -- start ---------------------------------------------------------------------------
    def start(self) -> SimLab:
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            self.sim.start()
            if self.sim.proc is not None:
                self.groups.append(self.sim.proc.pid)
            self._start_coordinator()
            self._start_exporter()
            self._create_place()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, argv: list[str], log: str, env: dict[str, str] | None = None
               ) -> subprocess.Popen[bytes]:
        out = open(self.work_dir / log, "wb")  # noqa: SIM115 - closed in stop()
        self._logs.append(out)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                cwd=self.work_dir, env=env, **lifeline.child_options())
        reaper.register(proc)
        self.groups.append(proc.pid)
        return proc

    def _start_coordinator(self) -> None:
        proc = self._spawn([labgrid_tool("labgrid-coordinator"), "-l", "127.0.0.1:0"],
                           "coordinator.log")
        self.coordinator_proc = proc
        log = self.work_dir / "coordinator.log"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            match = _LISTENING.search(log.read_text(errors="replace"))
            if match is not None:
                self.address = f"127.0.0.1:{match.group(1)}"
                return
            if proc.poll() is not None or time.monotonic() >= deadline:
                raise BootError(f"labgrid-coordinator did not start: {self._tail(log)}")
            time.sleep(0.05)

    def _start_exporter(self) -> None:
        wrapper_dir = self.work_dir / "bin"
        wrapper_dir.mkdir(exist_ok=True)
        wrapper = wrapper_dir / "ser2net"
        wrapper.write_text(_SER2NET_WRAPPER.format(ser2net=ser2net_binary()))
        wrapper.chmod(0o755)
        ports = {self.console_name: (self.run_dir / "console", self.spec.console.port.baud)}
        lcus = self.spec.power.lcus
        if self.relay_name is not None and lcus is not None:
            ports[self.relay_name] = (self.run_dir / "relay", lcus.port.baud)
        # The exporter's config is a Jinja template whose line statements start with '#':
        # no YAML comments here.
        lines = [f"{GROUP}:"]
        for name, (link, baud) in ports.items():
            lines += [f"  {name}:", "    cls: RawSerialPort",
                      f"    port: {os.path.realpath(link)}", f"    speed: {baud}"]
        config = self.work_dir / "exporter.yaml"
        config.write_text("\n".join(lines) + "\n")
        env = dict(os.environ, PATH=f"{wrapper_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        env.pop("LG_COORDINATOR", None)
        self.exporter_proc = self._spawn(
            [labgrid_tool("labgrid-exporter"), "-c", self.address, "-n", EXPORTER,
             "--hostname", "127.0.0.1", str(config)], "exporter.log", env)
        # `-v resources` lists available resources as
        #   Resource 'console' (bm-sim/box/NetworkSerialPort[/console]):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            listed = self.client("-v", "resources")
            missing = [name for name in ports if f"Resource '{name}' ({EXPORTER}/{GROUP}/"
                       "NetworkSerialPort" not in listed]
            if not missing:
                return
            if self.exporter_proc.poll() is not None or time.monotonic() >= deadline:
                raise BootError(f"labgrid-exporter did not export {', '.join(missing)}: "
                                f"{self._tail(self.work_dir / 'exporter.log')}")
            time.sleep(0.2)

    def _create_place(self) -> None:
        self.client("-p", self.place, "create")
        for name in (self.console_name, self.relay_name):
            if name is not None:
                self.client("-p", self.place, "add-named-match",
                            f"{EXPORTER}/{GROUP}/NetworkSerialPort/{name}", name)
        self.client("-p", self.place, "set-tags", f"board={self.place}")

    # -- use -----------------------------------------------------------------------------
    def client(self, *args: str, user: str = "bm-simlab", timeout: float = 30.0) -> str:
        """Runs ``labgrid-client`` against this lab's coordinator; its stdout."""
        argv = [labgrid_tool("labgrid-client"), "-x", self.address, *args]
        env = dict(os.environ, LG_USERNAME=user)
        env.pop("LG_TOKEN", None)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env=env, check=False)
        if done.returncode != 0:
            raise BootError(f"labgrid-client {' '.join(args)} failed: "
                            f"{(done.stderr or done.stdout).strip()[-800:]}")
        return done.stdout

    def pids(self) -> list[int]:
        """Live processes this lab started (coordinator, exporter, ser2net, simulator,
        QEMU), also after :meth:`stop` (which should leave none)."""
        return [pid for pid in _all_pids() if _pgid(pid) in self.groups]

    # -- the end -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ends the exporter (and its ser2net), the coordinator, then the box; each step is
        tried whatever the previous one did."""
        for attr in ("exporter_proc", "coordinator_proc"):
            proc: subprocess.Popen[bytes] | None = getattr(self, attr)
            setattr(self, attr, None)
            if proc is not None:
                _end_group(proc)
        self.sim.stop()
        for out in self._logs:
            out.close()
        self._logs.clear()

    def _tail(self, path: Path) -> str:
        with contextlib.suppress(OSError):
            return path.read_text(errors="replace")[-1500:]
        return f"(no {path.name})"

    def __enter__(self) -> SimLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group (the exporter's ser2net children are in it), then
    SIGKILL to whatever is left of the group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    reaper.unregister(proc)


def _all_pids() -> list[int]:
    """Running processes (zombies are gone already, waiting only for their reaper)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{name}/stat").read_text()
                if stat[stat.rindex(")") + 2:][:1] != "Z":
                    pids.append(int(name))
    return pids


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    from pytest_baremetal.boards import load_board
    from pytest_baremetal.targets.physical.schema import PhysicalSpec

    parser = argparse.ArgumentParser(prog="python -m pytest_baremetal.targets.physical.simlab",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("board", help="a board file with physical.place (e.g. "
                        "boards/sim-skylake-remote.yaml)")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="the simulator's folder (default /tmp/bm-sim/<board name>)")
    args = parser.parse_args(argv)
    board = load_board(Path(args.board))
    run_dir = args.run_dir or Path("/tmp/bm-sim") / board.name
    if not isinstance(board.spec, PhysicalSpec):
        parser.error(f"{args.board} is a {board.kind} board, not a physical one")
    lab = SimLab(board.spec, run_dir)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with lab:
        print(f"place {lab.place} ready (logs in {lab.work_dir}); Ctrl-C stops the lab\n"
              f"export LG_COORDINATOR={lab.address}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Starting and stopping the simulated box (``sim.py``) for a board with a ``sim`` section."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pytest_baremetal import lifeline
from pytest_baremetal.errors import BootError
from pytest_baremetal.targets.physical.schema import PhysicalSpec
from pytest_baremetal.targets.qemu import reaper

READY_TIMEOUT = 15.0


class SimBox:
    def __init__(self, spec: PhysicalSpec) -> None:
        assert spec.sim is not None
        self.spec = spec
        self.run_dir = spec.sim.run_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        sim = self.spec.sim
        assert sim is not None
        argv = [sys.executable, "-m", "pytest_baremetal.targets.physical.sim",
                "--run-dir", str(self.run_dir), "--cpu", sim.cpu, "--memory", sim.memory,
                "--nic", sim.nic]
        if self.spec.mac:
            argv += ["--mac", self.spec.mac]
        pxe = self.spec.boot.pxe
        if pxe is not None:
            argv += ["--pxe", "--bootfile", pxe.bootfile]
        if sim.tap is not None:
            argv += ["--tap", sim.tap]
        lcus = self.spec.power.lcus
        if lcus is not None:
            argv += ["--channel", str(lcus.channel)]
        return argv

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ready = self.run_dir / "ready"
        with contextlib.suppress(FileNotFoundError):
            ready.unlink()
        with open(self.run_dir / "sim.stderr", "wb") as err:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err, **lifeline.child_options())
        reaper.register(self.proc)
        deadline = time.monotonic() + READY_TIMEOUT
        while not _ready(ready, self.proc.pid):
            if self.proc.poll() is not None or time.monotonic() >= deadline:
                text = (self.run_dir / "sim.stderr").read_text(errors="replace")[-1500:]
                self.stop()
                raise BootError(f"the simulated box did not start in {self.run_dir}: {text}")
            time.sleep(0.05)

    def unplug_console(self) -> None:
        """Simulates the console adapter re-enumerating (for reliability tests)."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGUSR1)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # QEMU shares the simulator's group
        proc.wait()
        reaper.unregister(proc)


def _ready(path: Path, pid: int) -> bool:
    try:
        return path.read_text().strip() == str(pid)
    except OSError:
        return False

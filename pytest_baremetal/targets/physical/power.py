"""Power control of a physical board: LCUS relay, a labgrid power driver, an external
command, or a person. ``BoardPower`` is what a Dut holds: it remembers the state, powers
off idempotently, and tells when the machine has switched itself off (``sense``)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pytest_baremetal.errors import PowerError, RelayError
from pytest_baremetal.targets.physical.lcus import LcusRelay
from pytest_baremetal.targets.physical.schema import PowerSpec


class PowerDriver(Protocol):
    def set(self, on: bool) -> None: ...
    def get(self) -> bool | None: ...
    def close(self) -> None: ...


class LcusPower:
    def __init__(self, relay: LcusRelay) -> None:
        self.relay = relay

    def set(self, on: bool) -> None:
        try:
            self.relay.set(on)
        except RelayError as error:
            raise PowerError(str(error)) from error

    def get(self) -> bool | None:
        try:
            return self.relay.get()
        except RelayError as error:
            raise PowerError(str(error)) from error

    def close(self) -> None:
        self.relay.close()


class CommandPower:
    """``on``/``off`` argv lists (no shell), each with a timeout."""

    def __init__(self, on: Sequence[str], off: Sequence[str], timeout: float) -> None:
        self.argv = {True: list(on), False: list(off)}
        self.timeout = timeout

    def set(self, on: bool) -> None:
        argv = self.argv[on]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except subprocess.TimeoutExpired as error:
            raise PowerError(f"power command {argv} did not finish within "
                             f"{self.timeout:.0f} s") from error
        except OSError as error:
            raise PowerError(f"power command {argv} cannot run: {error}") from error
        if done.returncode != 0:
            raise PowerError(f"power command {argv} failed with status {done.returncode}: "
                             f"{(done.stderr or done.stdout).strip()[-500:]}")

    def get(self) -> bool | None:
        return None

    def close(self) -> None:
        pass


class ManualPower:
    """Asks the person at the bench (on the terminal, past pytest's capture)."""

    def __init__(self, board: str) -> None:
        self.board = board

    def set(self, on: bool) -> None:
        out = sys.__stderr__
        if out is not None:
            out.write(f"\n[pytest-baremetal] switch board {self.board} "
                      f"{'ON' if on else 'OFF'} now\n")
            out.flush()

    def get(self) -> bool | None:
        return None

    def close(self) -> None:
        pass


class LabgridPower:  # pragma: no cover - exercised with a real labgrid driver in tests
    """Any labgrid PowerProtocol driver, with its resource, bound to a local target."""

    def __init__(self, driver: str, args: dict[str, Any], resource: str | None,
                 resource_args: dict[str, Any], name: str) -> None:
        from labgrid import Target, target_factory

        self.target = Target(f"bm-{name}")
        if resource is not None:
            target_factory.make_resource(self.target, resource, "power", resource_args)
        self.driver: Any = target_factory.make_driver(self.target, driver, "power", args)
        self.target.activate(self.driver)

    def set(self, on: bool) -> None:
        try:
            self.driver.on() if on else self.driver.off()
        except Exception as error:
            raise PowerError(f"labgrid {type(self.driver).__name__}: {error}") from error

    def get(self) -> bool | None:
        try:
            return bool(self.driver.get())
        except Exception:
            return None

    def close(self) -> None:
        self.target.cleanup()


def make_driver(spec: PowerSpec, board: str, resolve_lcus: Callable[[], str]) -> PowerDriver:
    if spec.lcus is not None:
        lcus = spec.lcus
        return LcusPower(LcusRelay(resolve_lcus, lcus.channel, baud=lcus.port.baud,
                                   query=lcus.query, timeout=lcus.timeout))
    if spec.command is not None:
        return CommandPower(spec.command.on, spec.command.off, spec.command.timeout)
    if spec.labgrid is not None:
        lg = spec.labgrid
        return LabgridPower(lg.driver, dict(lg.args), lg.resource, dict(lg.resource_args), board)
    return ManualPower(board)


class BoardPower:
    """The Dut's power: remembers what it did, switches off idempotently, and waits for the
    machine to switch itself off when a ``sense`` command can tell (exit 0 on, 1 off)."""

    def __init__(self, driver: PowerDriver, sense: Sequence[str] = (), name: str = "") -> None:
        self.driver = driver
        self.sense = list(sense)
        self.name = name
        self.state: bool | None = None

    def on(self) -> None:
        self.state = True
        self.driver.set(True)

    def off(self) -> None:
        """Switches off; safe to call any number of times, also after errors."""
        self.driver.set(False)
        self.state = False

    def is_on(self) -> bool:
        if self.state is False:
            return False
        running = self.machine_running()
        return self.state is True if running is None else running

    @property
    def senses_off(self) -> bool:
        return bool(self.sense)

    def machine_running(self) -> bool | None:
        if not self.sense:
            return None
        try:
            code = subprocess.run(self.sense, capture_output=True, timeout=10,
                                  check=False).returncode
        except (OSError, subprocess.TimeoutExpired):
            return None
        return True if code == 0 else False if code == 1 else None

    def wait_off(self, timeout: float) -> int | None:
        """0 once the machine is seen off by itself; None when unknown or still on."""
        deadline = time.monotonic() + timeout
        while True:
            running = self.machine_running()
            if running is None:
                return None
            if not running:
                return 0
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.2)

    def close(self) -> None:
        self.driver.close()

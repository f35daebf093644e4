"""The device under test: a booted build, its console, its events and its power."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pytest_baremetal.boards import Board
from pytest_baremetal.console import Console
from pytest_baremetal.errors import BootError, ConsoleClosed, ExpectTimeout
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import Event, Generation, Profile, generations_from

DEFAULT_RUN_TIMEOUT = 600.0


@dataclass
class BootInfo:
    """How the boot went: what a report shows next to the console log."""

    board: str
    accelerator: str
    requested_accelerator: str
    fallback_reason: str | None = None
    argv: list[str] = field(default_factory=list)
    log_dir: Path | None = None
    started_at: float = 0.0
    first_output_s: float | None = None
    attempts: list[str] = field(default_factory=list)


class Power(Protocol):
    def wait_off(self, timeout: float) -> int | None: ...
    def off(self) -> None: ...
    def is_on(self) -> bool: ...


@dataclass
class Metric:
    name: str
    value: float
    unit: str


class Dut:
    """One boot of a build on a board, shared by the tests that need the same boot."""

    def __init__(self, board: Board, config: GuestConfig, console: Console, power: Power,
                 profile: Profile, info: BootInfo, build: object) -> None:
        self.board = board
        self.config = config
        self.console = console
        self.power = power
        self.profile = profile
        self.info = info
        self.build = build
        self.metrics: list[Metric] = []
        self.on_metric: Callable[[Metric], None] | None = None
        #: wraps every wait in a reporting step (Allure), when a reporter sets it
        self.on_wait: Callable[[str], AbstractContextManager[object]] | None = None

    def _step(self, what: str) -> AbstractContextManager[object]:
        return self.on_wait(what) if self.on_wait is not None else nullcontext()

    # -- waiting for what the guest prints -------------------------------------------------
    @property
    def run_timeout(self) -> float:
        return float(self.board.timeouts.run or DEFAULT_RUN_TIMEOUT)

    @property
    def log_path(self) -> Path:
        return self.console.log_path

    def _wait(self, found: Callable[[], object | None], what: str, timeout: float | None) -> object:
        limit = self.run_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            value = found()
            if value is not None:
                return value
            self.console.raise_if_failed(what)
            if self.console.closed:
                value = found()
                if value is not None:
                    return value
                raise ConsoleClosed(self._message(f"the console closed while waiting for {what}"))
            if time.monotonic() >= deadline:
                raise ExpectTimeout(
                    self._message(f"timed out after {limit:.0f} s waiting for {what}"))
            self.console.wait_for_output(min(0.5, max(0.0, deadline - time.monotonic())))

    def _message(self, headline: str) -> str:
        return f"{headline}\n--- last lines of {self.log_path} ---\n{self.tail()}"

    def tail(self, count: int = 20) -> str:
        return "\n".join(self.console.tail(count))

    def lines(self) -> list[str]:
        return [line.text for line in self.console.lines]

    def event(self, kind: str, timeout: float | None = None, **fields: object) -> Event:
        """The first event of this kind (with these field values) since power-on; waits."""
        self._require(kind)
        what = kind + "".join(f" {k}={v}" for k, v in fields.items())
        with self._step(f"await {what}"):
            return self.console.first_event(
                kind, self.run_timeout if timeout is None else timeout, **fields)

    def events(self, kind: str) -> list[Event]:
        """Every event of this kind, once the run is over."""
        self._require(kind)
        self.wait_done()
        return self.console.find_events(kind)

    def wait_done(self, timeout: float | None = None) -> Event:
        """The guest's last line (`done` event), waiting for it."""
        return self.event("done", timeout)

    def expect(self, pattern: str | re.Pattern[str], timeout: float | None = None) -> re.Match[str]:
        """The first console line since power-on matching the pattern; waits."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern

        def first() -> re.Match[str] | None:
            for line in list(self.console.lines):
                match = regex.search(line.text)
                if match:
                    return match
            return None

        with self._step(f"await /{regex.pattern}/"):
            result = self._wait(first, f"a line matching {regex.pattern!r}", timeout)
        assert isinstance(result, re.Match)
        return result

    def generations(self) -> list[Generation]:
        """Every generation of the run (text, prompt ids, ids), once the run is over."""
        self.wait_done()
        return generations_from(self.console.events, self.console.lines)

    def _require(self, kind: str) -> None:
        if not self.profile.provides(kind):
            raise BootError(f"the marker profile {self.profile.name!r} has no event {kind!r}")

    # -- interactive guests --------------------------------------------------------------
    def ask(self, prompt: str, timeout: float | None = None) -> Generation:
        """Sends a prompt to a guest in REPL mode and returns what it generated."""
        self._require("repl_ready")
        before = len(self.console.events)

        def ready_after(start: int) -> Event | None:
            return next((e for e in self.console.events[start:] if e.kind == "repl_ready"), None)

        self._wait(lambda: ready_after(0), "the REPL prompt", timeout)
        ready_count = sum(1 for e in self.console.events if e.kind == "repl_ready")
        self.console.send_line(prompt)

        def answered() -> bool | None:
            seen = [e for e in self.console.events if e.kind == "repl_ready"]
            return True if len(seen) > ready_count else None

        self._wait(answered, f"the answer to {prompt!r}", timeout)
        events = self.console.events[before:]
        generations = generations_from(events, self.console.lines)
        if not generations:
            raise BootError(self._message(f"no generation after the prompt {prompt!r}"))
        return generations[-1]

    # -- power and results ----------------------------------------------------------------
    def wait_power_off(self, timeout: float = 30.0) -> int | None:
        """Waits for the machine to power itself off; returns its exit status if known."""
        return self.power.wait_off(timeout)

    def record_metric(self, name: str, value: float, unit: str) -> Metric:
        metric = Metric(name, float(value), unit)
        self.metrics.append(metric)
        if self.on_metric is not None:
            self.on_metric(metric)
        return metric

    def close(self) -> None:
        try:
            self.power.off()
        finally:
            self.console.close()

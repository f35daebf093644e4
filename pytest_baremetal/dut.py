"""The device under test: a booted build, its console, its events and its power."""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_baremetal.boards import Board
from pytest_baremetal.build_under_test import BuildUnderTest
from pytest_baremetal.bus import EventBus, Metric
from pytest_baremetal.console import Console
from pytest_baremetal.errors import BootError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import Event, Generation, Profile, generations
from pytest_baremetal.markers.events import GEN_END
from pytest_baremetal.markers.profile import PROMPT

DEFAULT_RUN_TIMEOUT = 600.0


@dataclass(frozen=True)
class BootDescription:
    """How the machine was started, for a report: a titled text, never a command to run.

    ``command`` is set only when the text is a command line (QEMU's argv); ``facts`` are
    what the boot learned about the environment (QEMU version, firmware file); ``labels``
    are the report labels it adds (the emulated CPU).
    """

    title: str
    text: str
    command: tuple[str, ...] = ()
    facts: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass
class BootInfo:
    """How the boot went: what a report shows next to the console log."""

    board: str
    accelerator: str
    requested_accelerator: str
    fallback_reason: str | None = None
    description: BootDescription = BootDescription("boot", "")
    log_dir: Path | None = None
    started_at: float = 0.0
    first_output_s: float | None = None
    #: how long the firmware had for its first output (the board's, or its kind's default)
    firmware_timeout_s: float | None = None
    attempts: list[str] = field(default_factory=list)
    #: earlier boots of this Dut that failed for a reason of the lab's, retried
    retries: list[str] = field(default_factory=list)


class Power(Protocol):
    @property
    def senses_off(self) -> bool:
        """Whether this machine's power can tell that it switched itself off."""

    def wait_off(self, timeout: float) -> int | None: ...
    def off(self) -> None: ...
    def is_on(self) -> bool: ...


class Dut:
    """One boot of a build on a board, shared by the tests that need the same boot."""

    def __init__(self, board: Board[Any], config: GuestConfig, console: Console, power: Power,
                 profile: Profile, info: BootInfo, build: BuildUnderTest,
                 bus: EventBus | None = None) -> None:
        self.board = board
        self.config = config
        self.console = console
        self.power = power
        self.profile = profile
        self.info = info
        self.build = build
        self.metrics: list[Metric] = []
        #: where waits and metrics are published (reporters subscribe to it)
        self.bus = bus if bus is not None else EventBus()

    def _step(self, what: str, timeout: float | None = None) -> AbstractContextManager[None]:
        limit = self.run_timeout if timeout is None else timeout
        return self.bus.wait(self.board.name, what, limit)

    # -- waiting for what the guest prints -------------------------------------------------
    # Every wait goes through Console.wait_until (death strings, hang detection, remembered
    # hangs, idle prompts, structured ExpectTimeout): see pytest_baremetal/console/console.py.
    @property
    def run_timeout(self) -> float:
        return float(self.board.timeouts.run or DEFAULT_RUN_TIMEOUT)

    @property
    def interactive(self) -> bool:
        """True when this boot waits at a prompt instead of running to a `done` line."""
        return self.profile.interaction.is_repl(self.config.as_dict())

    @property
    def log_path(self) -> Path:
        return self.console.log_path

    def _limit(self, timeout: float | None) -> float:
        return self.run_timeout if timeout is None else timeout

    def tail(self, count: int = 20) -> str:
        return "\n".join(self.console.tail(count))

    def lines(self) -> list[str]:
        return [line.text for line in self.console.lines]

    def event(self, kind: str, timeout: float | None = None, **fields: object) -> Event:
        """The first event of this kind (with these field values) since power-on; waits."""
        self._require(kind)
        what = kind + "".join(f" {k}={v}" for k, v in fields.items())
        with self._step(f"await {what}", timeout):
            return self.console.first_event(kind, self._limit(timeout), **fields)

    def events(self, kind: str) -> list[Event]:
        """Every event of this kind, once the run is over (see :meth:`wait_done`)."""
        self._require(kind)
        self.wait_done()
        return self.console.find_events(kind)

    def wait_done(self, timeout: float | None = None) -> Event:
        """Waits until the run is over and returns the event that says so.

        A script build is over at its `done` line; an interactive (repl) build when it is
        idle at its prompt (the `prompt` event it waits at), or at `done` after a quit.
        """
        if not self.interactive:
            return self.event("done", timeout)
        self._require(PROMPT)
        has_done = self.profile.provides("done")

        def over() -> Event | None:
            idle = self.console.idle_prompt
            if idle is not None or not has_done:
                return idle
            done = self.console.find_events("done")
            return done[-1] if done else None

        with self._step("await the prompt (idle)", timeout):
            return self.console.wait_until(over, "the guest idle at its prompt",
                                           self._limit(timeout))

    def expect(self, pattern: str | re.Pattern[str], timeout: float | None = None,
               *, partial: bool = False) -> re.Match[str]:
        """The first console line since power-on matching the pattern; waits.

        ``partial=True`` also looks at the incomplete last line (a prompt)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        with self._step(f"await /{regex.pattern}/", timeout):
            return self.console.first_line(regex, self._limit(timeout), partial=partial)

    def generations(self) -> list[Generation]:
        """Every generation of the run (text, prompt ids, ids), once the run is over."""
        self.wait_done()
        return generations(self.console.events)

    def _require(self, kind: str) -> None:
        if not self.profile.provides(kind):
            raise BootError(f"the marker profile {self.profile.name!r} has no event {kind!r}")

    # -- interactive guests --------------------------------------------------------------
    def ask(self, prompt: str, timeout: float | None = None) -> Generation:
        """Sends a prompt to a guest idle at its prompt and returns what it generated.

        Waits for the prompt, sends ``prompt`` and the profile's input terminator, then waits
        (death strings and hang detection included) for the answer's end and the next prompt.
        """
        self._require(PROMPT)
        self._require(GEN_END)
        limit = self._limit(timeout)
        with self._step(f"ask {prompt!r}"):
            self.console.wait_until(lambda: self.console.idle_prompt,
                                    "the guest idle at its prompt", limit)
            start = self.console.event_count
            self.console.send_line(prompt)
            end = self.console.next_event(GEN_END, limit, start)
            # the id lines come after the end line: the next prompt says the answer is over
            self.console.wait_until(lambda: self.console.idle_prompt,
                                    f"the prompt after the answer to {prompt!r}", limit)
        found = generations(self.console.events_from(start))
        if not found:
            raise BootError(self._message(f"no generation after the prompt {prompt!r} "
                                          f"(answer end: {end.line!r})"))
        return found[-1]

    def quit(self, timeout: float | None = None) -> None:
        """Sends the profile's quit line to an idle interactive guest."""
        quit_line = self.profile.interaction.quit
        if quit_line is None:
            raise BootError(f"the marker profile {self.profile.name!r} names no quit line "
                            "(interaction.quit)")
        self.console.wait_until(lambda: self.console.idle_prompt,
                                "the guest idle at its prompt", self._limit(timeout))
        self.console.send_line(quit_line)

    def _message(self, headline: str) -> str:
        return f"{headline}\n--- last lines of {self.log_path} ---\n{self.tail()}"

    # -- power and results ----------------------------------------------------------------
    def wait_power_off(self, timeout: float = 30.0) -> int | None:
        """Waits for the machine to power itself off; returns its exit status if known
        (None when it did not, or when this board cannot tell: see :attr:`senses_power_off`)."""
        return self.power.wait_off(timeout)

    @property
    def senses_power_off(self) -> bool:
        """Whether this board can tell that the machine switched itself off (a QEMU exits;
        a physical board needs ``physical.power.sense``)."""
        return self.power.senses_off

    def record_metric(self, name: str, value: float, unit: str) -> Metric:
        metric = Metric(name, float(value), unit)
        self.metrics.append(metric)
        self.bus.publish(metric)
        return metric

    def close(self) -> None:
        try:
            self.power.off()
        finally:
            self.console.close()

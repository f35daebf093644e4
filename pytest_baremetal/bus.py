"""A small event bus: what happens during a run, for whoever reports it.

Targets and the Dut publish messages (a boot phase, a wait, a metric, a verdict, an
attachment); the live log, JUnit properties and the Allure reporter subscribe. Publishers
know nothing of the reporters, and a reporter that fails never fails the test.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_baremetal.console import Console

LOG = logging.getLogger("pytest_baremetal")


@dataclass(frozen=True)
class BootPhase:
    """A step of a boot: power on, firmware first output, guest banner, model loaded..."""

    board: str
    phase: str
    #: seconds since power-on
    at: float
    detail: str = ""


@dataclass(frozen=True)
class ConsoleOpened:
    """A boot's console is open (before power-on): live viewers follow it from here."""

    board: str
    console: Console


@dataclass(frozen=True)
class WaitStarted:
    board: str
    what: str
    timeout: float


@dataclass(frozen=True)
class WaitEnded:
    board: str
    what: str
    seconds: float
    error: BaseException | None = None


@dataclass(frozen=True)
class Metric:
    """A figure a test recorded (tok/s, ms...)."""

    name: str
    value: float
    unit: str


@dataclass(frozen=True)
class Verdict:
    """A judgement of a figure against its history (``PerfTracker.check`` publishes it)."""

    board: str
    metric: str
    #: ``regression``, ``no_change``, ``inconclusive``, ``no_baseline``...
    status: str
    #: the full explanation: the comparison, baseline, samples, method and power
    text: str
    #: the verdict fails the test (a regression on a tracked board)
    regression: bool = False


@dataclass(frozen=True)
class Attachment:
    """A text for the current test's report, read when the report is made (``read``), so
    a log that grows during the test is attached whole."""

    name: str
    read: Callable[[], str]
    #: also shown as a section of the test's terminal report when it fails
    on_failure: bool = True


Message = BootPhase | ConsoleOpened | WaitStarted | WaitEnded | Metric | Verdict | Attachment
Subscriber = Callable[[Message], None]


@dataclass
class EventBus:
    """Publish/subscribe, synchronous, in the publishing thread."""

    _subscribers: list[Subscriber] = field(default_factory=list)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Adds a subscriber; returns what removes it."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber) \
            if subscriber in self._subscribers else None

    def publish(self, message: Message) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(message)
            except Exception:  # a reporter's bug must not fail the test
                LOG.exception("a subscriber failed on %s", type(message).__name__)

    @contextmanager
    def wait(self, board: str, what: str, timeout: float) -> Iterator[None]:
        """Publishes the start and end of a wait around a block."""
        started = time.monotonic()
        self.publish(WaitStarted(board, what, timeout))
        try:
            yield
        except BaseException as error:
            self.publish(WaitEnded(board, what, time.monotonic() - started, error))
            raise
        self.publish(WaitEnded(board, what, time.monotonic() - started))


def log_message(message: Message) -> None:
    """The live log: boot phases and waits as INFO records of logger ``pytest_baremetal``."""
    if isinstance(message, BootPhase):
        detail = f": {message.detail}" if message.detail else ""
        LOG.info("%s: %s at %.2f s%s", message.board, message.phase, message.at, detail)
    elif isinstance(message, WaitStarted):
        LOG.info("%s: waiting for %s (up to %.0f s)", message.board, message.what,
                 message.timeout)
    elif isinstance(message, WaitEnded):
        outcome = "done" if message.error is None else f"failed ({type(message.error).__name__})"
        LOG.info("%s: %s after %.2f s: %s", message.board, message.what, message.seconds,
                 outcome)
    elif isinstance(message, Metric):
        LOG.info("metric %s = %g %s", message.name, message.value, message.unit)
    elif isinstance(message, Verdict):
        LOG.info("%s: verdict %s: %s", message.board, message.metric,
                 message.text.splitlines()[0] if message.text else message.status)

"""Sign of life: boot phases and waits in pytest's live log, the console on the terminal.

Boot phases and waits are INFO records of logger ``pytest_baremetal`` (so
``--log-cli-level=INFO`` shows them with their times); ``--bm-console`` follows every boot's
cleaned console, line by line, on the terminal as it arrives.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from pytest_baremetal.bus import LOG, ConsoleOpened, Message, WaitEnded, WaitStarted, log_message
from pytest_baremetal.console import Console
from pytest_baremetal.markers import Event

POLL_S = 0.2
#: a wait longer than this is reminded in the log, every this many seconds
STILL_WAITING_S = 30.0
#: events that are phases of a run, and how the live log names them
PHASES = {"model": "model loaded", "gen_begin": "generation started",
          "gen_end": "generation finished", "perf": "performance figures", "done": "done"}


class ConsoleFollower:
    """Follows one console until it closes: its phases to the log, and (``write``) its
    cleaned lines to the terminal."""

    def __init__(self, board: str, console: Console,
                 write: Callable[[str], None] | None) -> None:
        self.board = board
        self.console = console
        self.write = write
        self.thread = threading.Thread(target=self._run, name=f"bm-console-{board}",
                                       daemon=True)

    def start(self) -> ConsoleFollower:
        self.thread.start()
        return self

    def _run(self) -> None:
        shown = events = 0
        while True:
            closed = self.console.closed
            if self.write is not None:
                # by absolute index: the console keeps only a window of a long boot
                for index, line in self.console.lines_from(shown):
                    self.write(f"[{self.board}] {line.text}\n")
                    shown = index + 1
            found = self.console.events
            for event in found[events:]:
                self._phase(event)
            events = len(found)
            if closed:
                return
            self.console.wait_for_output(POLL_S)

    def _phase(self, event: Event) -> None:
        name = PHASES.get(event.kind)
        if name is not None:
            LOG.info("%s: %s at %.2f s: %s", self.board, name, event.time, event.line.strip())


class LiveLog:
    """The bus subscriber behind the live log and ``--bm-console``."""

    def __init__(self, stream_console: bool, out: TextIO | None = None,
                 remind_every: float = STILL_WAITING_S) -> None:
        self.stream_console = stream_console
        self.out = out
        self.remind_every = remind_every
        self.followers: list[ConsoleFollower] = []
        self._lock = threading.Lock()
        self._waits: dict[tuple[str, str], float] = {}
        self._reminder: threading.Thread | None = None

    def _write(self, text: str) -> None:
        out = self.out or sys.__stderr__ or sys.stderr
        with self._lock:
            out.write(text)
            out.flush()

    def __call__(self, message: Message) -> None:
        log_message(message)
        if isinstance(message, WaitStarted):
            with self._lock:
                self._waits[(message.board, message.what)] = time.monotonic()
            self._remind()
        elif isinstance(message, WaitEnded):
            with self._lock:
                self._waits.pop((message.board, message.what), None)
        if isinstance(message, ConsoleOpened):
            write = self._write if self.stream_console else None
            self.followers.append(ConsoleFollower(message.board, message.console, write).start())

    def _remind(self) -> None:
        """Starts the thread that says, every ``remind_every`` s, what a long wait awaits."""
        if self._reminder is not None:
            return

        def run() -> None:
            while True:
                time.sleep(self.remind_every)
                now = time.monotonic()
                with self._lock:
                    waits = list(self._waits.items())
                for (board, what), since in waits:
                    if now - since >= self.remind_every:
                        LOG.info("%s: still waiting for %s (%.0f s so far)", board, what,
                                 now - since)

        self._reminder = threading.Thread(target=run, name="bm-still-waiting", daemon=True)
        self._reminder.start()

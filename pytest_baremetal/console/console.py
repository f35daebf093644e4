"""The Console: a reader thread turning a transport's bytes into logged lines and events,
and the waits tests use (``expect``, ``expect_event``) with death strings and hang detection.

Consuming waits (``expect``, ``expect_event``) share one cursor over the cleaned lines: a
match consumes the console up to its end, and the next wait continues from there. They
are meant for one waiting thread at a time. ``first_event`` and ``find_events`` do not move
the cursor.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from pytest_baremetal.console.log import ConsoleLog
from pytest_baremetal.console.transport import Transport
from pytest_baremetal.errors import (
    TAIL_LINES,
    ConsoleClosed,
    DeathStringSeen,
    ExpectTimeout,
)
from pytest_baremetal.markers.events import Event, EventParser
from pytest_baremetal.markers.profile import Profile

T = TypeVar("T")
READ_SIZE = 65536
POLL_S = 0.05  # how long the reader blocks in read(); bounds close() latency, not data latency


@dataclass(frozen=True)
class Line:
    """A complete cleaned line and the time of its first character (s since the log opened)."""

    text: str
    time: float


@dataclass
class _Death:
    index: int
    pattern: str
    line: str
    seen_at: float  # monotonic
    acknowledged: bool = False


class Console:
    """One guest console: log files, cleaned lines, parsed events and waits on them."""

    def __init__(
        self,
        transport: Transport,
        log_dir: str | Path,
        profile: Profile,
        name: str = "console",
        *,
        quiet_timeout: float | None = None,
        death_context: float = 0.5,
    ) -> None:
        self.name = name
        self.profile = profile
        #: no console bytes for this many seconds during a wait raises ExpectTimeout (hung)
        self.quiet_timeout = quiet_timeout
        #: how long after a death line its following lines are collected for the report
        self.death_context = death_context
        self._transport = transport
        self.log = ConsoleLog(Path(log_dir) / f"{name}.console.log")
        self._parser = EventParser(profile)
        self._cond = threading.Condition()
        self._lines: list[Line] = []
        self._partial = ""
        self._partial_time: float | None = None
        self._events: list[Event] = []
        self._event_lines: list[int] = []  # line index of each event, ascending
        self._deaths: list[_Death] = []
        self._cursor = (0, 0)  # (line index, column)
        self._first_byte: float | None = None
        self._chunks = 0  # chunks received, so waits can notice output that cleans to nothing
        self._last_byte = time.monotonic()
        self._eof: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> Console:
        """Start the reader thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"bm-console-{self.name}", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the reader, close the transport and the log files. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * POLL_S + 1.0)
        self._transport.close()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        with self._cond:
            if self._eof is None:
                self._eof = "console closed by the host"
            self._cond.notify_all()
        self.log.close()

    def __enter__(self) -> Console:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what was received --------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        """The raw, timestamped log (``<name>.console.log``)."""
        return self.log.raw_path

    @property
    def text_path(self) -> Path:
        """The cleaned view (``<name>.console.txt``)."""
        return self.log.text_path

    @property
    def lines(self) -> tuple[Line, ...]:
        with self._cond:
            return tuple(self._lines)

    @property
    def partial_line(self) -> str:
        """The cleaned text received after the last newline (a prompt, for example)."""
        with self._cond:
            return self._partial

    @property
    def events(self) -> tuple[Event, ...]:
        with self._cond:
            return tuple(self._events)

    @property
    def first_byte_time(self) -> float | None:
        """Seconds from the log opening to the first byte received, or None."""
        return self._first_byte

    @property
    def eof(self) -> str | None:
        """Why the stream ended, or None while it is open."""
        return self._eof

    @property
    def closed(self) -> bool:
        """True once the stream ended or the console was closed."""
        return self._eof is not None or self._closed

    def wait_for_output(self, timeout: float) -> bool:
        """Block until more bytes arrive (or the stream ends); False on timeout."""
        with self._cond:
            seen = (self._chunks, self._eof)
            return self._cond.wait_for(lambda: (self._chunks, self._eof) != seen, timeout)

    def raise_if_failed(self, what: str) -> None:
        """Raise DeathStringSeen if a death string was seen (for waits built outside)."""
        with self._cond:
            death = next((d for d in self._deaths if not d.acknowledged), None)
            if death is not None:
                raise self._death_error(death, what)

    @property
    def cursor(self) -> tuple[int, int]:
        """Where the next consuming wait starts: (line index, column)."""
        with self._cond:
            return self._cursor

    @cursor.setter
    def cursor(self, value: tuple[int, int]) -> None:
        with self._cond:
            self._cursor = value

    def find_events(self, kind: str, **fields: object) -> list[Event]:
        """Every event of ``kind`` received so far whose fields match (no waiting)."""
        with self._cond:
            return [e for e in self._events if e.kind == kind and e.matches(**fields)]

    def tail(self, count: int = TAIL_LINES) -> list[str]:
        """The last ``count`` cleaned lines, the incomplete last line included."""
        with self._cond:
            return self._tail(len(self._lines), count)

    # -- waits --------------------------------------------------------------------------

    def expect(
        self, pattern: str | re.Pattern[str], timeout: float, *, partial: bool = False
    ) -> re.Match[str]:
        """Wait for ``pattern`` in the complete lines after the cursor; consume up to the match.

        ``partial=True`` also searches the incomplete last line (for prompts).
        """
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        with self._cond:
            scan = self._cursor[0]

        def find() -> tuple[re.Match[str], int] | None:
            nonlocal scan
            line, col = self._cursor
            while scan < len(self._lines):
                m = rx.search(self._lines[scan].text, col if scan == line else 0)
                if m is not None:
                    return m, scan
                scan += 1
            if partial:
                m = rx.search(self._partial, col if scan == line else 0)
                if m is not None:
                    return m, scan
            return None

        def consume(m: re.Match[str], index: int) -> None:
            self._cursor = (index, m.end())

        what = f"pattern {rx.pattern!r}" + (" (incomplete line included)" if partial else "")
        return self._wait(find, consume, what, timeout)

    def expect_event(self, kind: str, timeout: float, **fields: object) -> Event:
        """Wait for the next event of ``kind`` (at or after the cursor line) matching ``fields``.

        A field filter is a value to compare or a predicate. The match consumes its line.
        """
        self.profile.spec(kind)  # unknown kinds fail now, not after the timeout
        with self._cond:
            start = bisect.bisect_left(self._event_lines, self._cursor[0])

        def consume(_: Event, index: int) -> None:
            self._cursor = (index + 1, 0)

        find = self._event_finder(kind, fields, start)
        return self._wait(find, consume, _describe_event(kind, fields), timeout)

    def first_event(self, kind: str, timeout: float, **fields: object) -> Event:
        """Wait for the first event of ``kind`` since the start; the cursor does not move."""
        self.profile.spec(kind)
        find = self._event_finder(kind, fields, 0)
        return self._wait(find, lambda _e, _i: None, _describe_event(kind, fields), timeout)

    def _event_finder(self, kind: str, fields: dict[str, object],
                      start: int) -> Callable[[], tuple[Event, int] | None]:
        """A scan over events from index `start` that resumes where it stopped."""
        scan = start

        def find() -> tuple[Event, int] | None:
            nonlocal scan
            while scan < len(self._events):
                event = self._events[scan]
                if event.kind == kind and event.matches(**fields):
                    return event, self._event_lines[scan]
                scan += 1
            return None

        return find

    def send_line(self, text: str) -> None:
        """Send ``text`` and a CR (what a UEFI program reading the console expects)."""
        self._transport.write(text.encode("utf-8") + b"\r")

    def write(self, data: bytes) -> None:
        """Send raw bytes."""
        self._transport.write(data)

    # -- internals: waiting -------------------------------------------------------------

    def _wait(
        self,
        find: Callable[[], tuple[T, int] | None],
        consume: Callable[[T, int], None],
        what: str,
        timeout: float,
    ) -> T:
        start = time.monotonic()
        deadline = start + timeout
        with self._cond:
            while True:
                found = find()
                death = next((d for d in self._deaths if not d.acknowledged), None)
                if found is not None:
                    value, index = found
                    if death is None or index <= death.index:
                        if death is not None and index == death.index:
                            death.acknowledged = True  # the caller awaited this very line
                        consume(value, index)
                        return value
                if death is not None:
                    raise self._death_error(death, what)
                elapsed = time.monotonic() - start
                if self._eof is not None:
                    raise ConsoleClosed(
                        f"console closed while waiting for {what} "
                        f"({elapsed:.1f} s into a {timeout:g} s wait): {self._eof}",
                        last_lines=self._tail(len(self._lines)),
                        log_path=self.log_path,
                    )
                now = time.monotonic()
                if now >= deadline:
                    raise ExpectTimeout(
                        f"timed out after {timeout:g} s waiting for {what}",
                        awaited=what,
                        timeout=timeout,
                        last_lines=self._tail(len(self._lines)),
                        log_path=self.log_path,
                    )
                wake = deadline
                if self.quiet_timeout is not None:
                    quiet_at = max(self._last_byte, start) + self.quiet_timeout
                    if now >= quiet_at:
                        raise ExpectTimeout(
                            f"the guest went quiet: no console output for "
                            f"{self.quiet_timeout:g} s while waiting for {what} (it looks "
                            f"hung; gave up {now - start:.1f} s into a {timeout:g} s wait)",
                            awaited=what,
                            timeout=timeout,
                            quiet=True,
                            last_lines=self._tail(len(self._lines)),
                            log_path=self.log_path,
                        )
                    wake = min(wake, quiet_at)
                self._cond.wait(wake - now)

    def _death_error(self, death: _Death, what: str) -> DeathStringSeen:
        """Collect the lines printed within ``death_context`` after the death line."""
        until = death.seen_at + self.death_context
        while self._eof is None and (left := until - time.monotonic()) > 0:
            self._cond.wait(left)
        until_rel = until - self.log.t0
        end = death.index + 1
        while end < len(self._lines) and self._lines[end].time <= until_rel:
            end += 1
        context = [line.text for line in self._lines[death.index + 1 : end]]
        return DeathStringSeen(
            f"death string {death.pattern!r} seen while waiting for {what}: {death.line}",
            pattern=death.pattern,
            line=death.line,
            context=context,
            last_lines=self._tail(end, with_partial=end == len(self._lines)),
            log_path=self.log_path,
        )

    def _tail(self, end: int, count: int = TAIL_LINES, with_partial: bool = True) -> list[str]:
        tail = [line.text for line in self._lines[max(0, end - count) : end]]
        if with_partial and end == len(self._lines) and self._partial:
            tail = [*tail, self._partial][-count:]
        return tail

    # -- internals: the reader thread ---------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    data = self._transport.read(READ_SIZE, POLL_S)
                except ConsoleClosed as exc:
                    self._finish(str(exc))
                    return
                if data:
                    self._ingest(data, time.monotonic())
            self._finish("console closed by the host")
        except Exception as exc:  # a bug here must not leave waiters hanging
            self._finish(f"console reader failed: {exc!r}")

    def _ingest(self, data: bytes, now: float) -> None:
        text = self.log.append(data, now)
        rel = now - self.log.t0
        complete: list[Line] = []
        partial, partial_time = self._partial, self._partial_time
        pieces = text.split("\n")
        for piece in pieces[:-1]:
            complete.append(Line(partial + piece, rel if partial_time is None else partial_time))
            partial, partial_time = "", None
        if pieces[-1]:
            partial += pieces[-1]
            partial_time = rel if partial_time is None else partial_time
        self._publish(complete, partial, partial_time, now)

    def _publish(
        self,
        complete: list[Line],
        partial: str,
        partial_time: float | None,
        now: float,
        received: bool = True,
    ) -> None:
        base = len(self._lines)  # only this thread appends, so reading it unlocked is safe
        events: list[tuple[int, Event]] = []
        deaths: list[_Death] = []
        for offset, line in enumerate(complete):
            events.extend((base + offset, e) for e in self._parser.feed(line.text, line.time))
            pattern = self.profile.death_match(line.text)
            if pattern is not None:
                deaths.append(_Death(base + offset, pattern.pattern, line.text, now))
        with self._cond:
            if received:
                self._chunks += 1
                if self._first_byte is None:
                    self._first_byte = now - self.log.t0
                self._last_byte = now
            self._lines.extend(complete)
            self._partial, self._partial_time = partial, partial_time
            for index, event in events:
                self._events.append(event)
                self._event_lines.append(index)
            self._deaths.extend(deaths)
            self._cond.notify_all()

    def _finish(self, reason: str) -> None:
        try:
            tail = self.log.finish()
        except ValueError:  # log already closed
            tail = ""
        now = time.monotonic()
        rest = self._partial + tail
        started = now - self.log.t0 if self._partial_time is None else self._partial_time
        complete = [Line(rest, started)] if rest else []
        self._publish(complete, "", None, now, received=False)
        with self._cond:
            self._eof = reason
            self._cond.notify_all()


def _describe_event(kind: str, fields: dict[str, object]) -> str:
    filters = ", ".join(
        f"{k}=<predicate>" if callable(v) else f"{k}={v!r}" for k, v in fields.items()
    )
    return f"event {kind!r}" + (f" with {filters}" if filters else "")

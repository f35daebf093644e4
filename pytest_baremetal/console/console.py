"""The Console: a reader thread turning a transport's bytes into logged lines and events,
and the one wait engine every wait of the plugin goes through (:meth:`Console.wait_until`).

Every wait has the same rules: death strings (checked by the reader on every line, the
incomplete last line included) fail it about ``death_context`` s after the line; no console
byte for ``quiet_timeout`` s fails it as a hang, and the boot is then remembered as hung
(later waits fail at once with the same reason until the guest prints again); a guest idle
at its prompt (profile ``interaction.prompt``) fails a wait that input would be needed for
after ``idle_timeout`` s; the end of the stream fails it; every failure is a structured
:class:`~pytest_baremetal.errors.ConsoleError` with the last lines and the log path.

Consuming waits (``expect``, ``expect_event``) share one cursor over the cleaned lines: a
match consumes the console up to its end, and the next wait continues from there. They
are meant for one waiting thread at a time. ``first_event`` and ``find_events`` do not move
the cursor. Memory is bounded: the first :data:`HEAD_LINES` lines and a window of the last
:data:`WINDOW_CHARS` characters stay in memory (the raw log on disk has everything); a
line longer than :data:`MAX_LINE_CHARS` is cut. Events likewise: the first
:data:`HEAD_EVENTS` and the last :data:`WINDOW_EVENTS` (positions stay absolute: see
:attr:`Console.event_count`).
"""

from __future__ import annotations

import bisect
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, TypeVar

from pytest_baremetal.console.log import ConsoleLog
from pytest_baremetal.console.transport import Transport
from pytest_baremetal.errors import (
    TAIL_LINES,
    ConfigError,
    ConsoleClosed,
    DeathStringSeen,
    ExpectTimeout,
)
from pytest_baremetal.markers.events import Event, EventParser
from pytest_baremetal.markers.profile import PROMPT, Profile

T = TypeVar("T")
READ_SIZE = 65536
POLL_S = 0.05  # how long the reader blocks in read(); bounds close() latency, not data latency
HEAD_LINES = 2000  # the first lines of a boot stay in memory (banner, firmware)
WINDOW_CHARS = 4 << 20  # and the last few MiB of lines
MAX_LINE_CHARS = 1 << 16  # a longer line is cut: it is not a marker, and regexes stay cheap
HEAD_EVENTS = 5000  # the first events of a boot stay in memory (banner, config, kernel)
WINDOW_EVENTS = 50_000  # and the last ones (about 1 KB each)
DEFAULT_IDLE_TIMEOUT = 5.0
_AFTER_EVERYTHING = sys.maxsize  # "index" of a value found by a generic check


@dataclass(frozen=True)
class Line:
    """A complete cleaned line and the time of its first character (s since the log opened)."""

    text: str
    time: float


@dataclass
class _Hang:
    """A wait judged the guest hung: later waits fail at once until it prints again."""

    headline: str
    last_byte: float  # monotonic time of the last byte when it was judged


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
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.name = name
        self.profile = profile
        #: no console bytes for this many seconds during a wait raises ExpectTimeout (hung)
        self.quiet_timeout = quiet_timeout
        #: how long after a death line its following lines are collected for the report
        self.death_context = death_context
        #: a guest idle at its prompt this long fails a wait that needs input
        self.idle_timeout = idle_timeout
        self._transport = transport
        self.log = ConsoleLog(Path(log_dir) / f"{name}.console.log")
        self._parser = EventParser(profile)
        self._cond = threading.Condition()
        self._head: list[Line] = []
        self._lines: list[Line] = []  # the window: absolute index of _lines[0] is _base
        self._base = 0
        self._count = 0  # complete lines received
        self._window_chars = 0
        self._partial = ""
        self._partial_time: float | None = None
        self._partial_kinds: frozenset[str] = frozenset()  # events already on the partial
        self._partial_death = False
        # idle at the prompt: the last event is a prompt and no input was sent since (lines
        # without events, such as an echo or a host notice, do not end it)
        self._prompt: Event | None = None
        self._prompt_at = 0.0  # monotonic time of the last prompt event
        self._prompt_line = -1  # index of the prompt's line
        self._at_prompt = False
        self._input_since_prompt = False
        self._hang: _Hang | None = None
        self._failure: BaseException | None = None  # a profile pattern that timed out
        self._event_head: list[tuple[Event, int]] = []  # the first events, with their line
        self._events: list[Event] = []  # the window of recent events
        self._event_base = 0  # the absolute position of _events[0]
        self._event_lines: list[int] = []  # line index of each event in the window, ascending
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
        """The complete lines in memory: the first ones of the boot and the recent window
        (all of them unless the boot printed more than a few MiB)."""
        with self._cond:
            head = self._head[: max(0, min(len(self._head), self._base))]
            return (*head, *self._lines)

    @property
    def line_count(self) -> int:
        """How many complete lines were received (the absolute index of the next one)."""
        with self._cond:
            return self._count

    def lines_from(self, index: int) -> list[tuple[int, Line]]:
        """``(absolute index, line)`` of the lines from ``index`` on that are still in memory."""
        with self._cond:
            start = max(index, self._base)
            return [(k, self._lines[k - self._base]) for k in range(start, self._count)]

    @property
    def partial_line(self) -> str:
        """The cleaned text received after the last newline (a prompt, for example)."""
        with self._cond:
            return self._partial

    @property
    def events(self) -> tuple[Event, ...]:
        """The events in memory: the first ones of the boot and the recent window (all of
        them unless the boot printed more than :data:`WINDOW_EVENTS` marker lines)."""
        with self._cond:
            return tuple(event for _, event, _ in self._kept_events(0))

    @property
    def event_count(self) -> int:
        """How many events were parsed (the absolute position of the next one)."""
        with self._cond:
            return self._event_base + len(self._events)

    def events_from(self, index: int) -> list[Event]:
        """The events still in memory from position ``index`` on (see :attr:`event_count`)."""
        with self._cond:
            return [event for _, event, _ in self._kept_events(index)]

    def _kept_events(self, start: int) -> Iterator[tuple[int, Event, int]]:
        """``(position, event, line index)`` of the events in memory from ``start`` on: the
        part of the head the window no longer has, then the window. Under the lock."""
        for position in range(start, min(len(self._event_head), self._event_base)):
            event, line = self._event_head[position]
            yield position, event, line
        for k in range(max(start, self._event_base) - self._event_base, len(self._events)):
            yield self._event_base + k, self._events[k], self._event_lines[k]

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

    @property
    def death_lines(self) -> list[str]:
        """Every line a death string matched."""
        with self._cond:
            return [d.line for d in self._deaths]

    @property
    def idle_prompt(self) -> Event | None:
        """The prompt event the guest is idle at (no byte received, none sent since)."""
        with self._cond:
            return self._prompt if self._idle() else None

    def _idle(self) -> bool:
        return self._at_prompt and not self._input_since_prompt and self._eof is None

    def wait_for_output(self, timeout: float) -> bool:
        """Block until more bytes arrive (or the stream ends); False on timeout."""
        with self._cond:
            seen = (self._chunks, self._eof)
            return self._cond.wait_for(lambda: (self._chunks, self._eof) != seen, timeout)

    def raise_if_failed(self, what: str) -> None:
        """Raise DeathStringSeen if a death string was seen (for waits built outside)."""
        with self._cond:
            if self._failure is not None:
                raise self._failure
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
            return [e for _, e, _ in self._kept_events(0)
                    if e.kind == kind and e.matches(**fields)]

    def event_line(self, event: Event) -> int:
        """The line index of ``event``, one of :attr:`events` (the same object)."""
        with self._cond:
            for _, kept, line in self._kept_events(0):
                if kept is event:
                    return line
        raise ValueError(f"not an event of this console: {event.line!r}")

    def tail(self, count: int = TAIL_LINES) -> list[str]:
        """The last ``count`` cleaned lines, the incomplete last line included."""
        with self._cond:
            return self._tail(self._count, count)

    # -- waits --------------------------------------------------------------------------

    def wait_until(
        self,
        check: Callable[[], T | Literal[False] | None],
        what: str,
        timeout: float,
        *,
        hang: bool = True,
        idle: bool = True,
        poll: float | None = None,
        line_of: Callable[[T], int] | None = None,
    ) -> T:
        """The wait engine: block until ``check()`` returns something (None and False mean
        "not yet"), and return that.

        ``check`` runs with the console's lock held (it may read every property and method
        of this console, which share that lock) whenever bytes, lines or events arrive, at
        least every ``poll`` s when given (for conditions outside the console, such as a
        process exiting), and once more at the end of the stream. It may raise to end the
        wait with its own error. ``what`` says what is awaited, for messages. Example, the
        firmware's first byte or QEMU's exit, whichever comes first::

            console.wait_until(
                lambda: console.first_byte_time is not None or process.returncode is not None,
                "the firmware's first output", firmware_timeout, hang=False, poll=0.2)

        Fails with, in this order: :class:`DeathStringSeen` (a death string was seen: a
        value found after it does not count), ``PatternTimeout`` (a profile pattern froze), a
        :class:`ConsoleClosed` (end of stream), :class:`ExpectTimeout` with ``quiet=True``
        when the guest printed nothing for ``quiet_timeout`` s (``hang=False`` turns that
        off; the boot is remembered as hung), an :class:`ExpectTimeout` when the guest is
        idle at its prompt for ``idle_timeout`` s (``idle=False`` turns that off), and an
        :class:`ExpectTimeout` after ``timeout`` s.

        A value counts as found after every line received so far, so a death string already
        in wins, unless ``line_of`` gives the line the value stands for (such as
        :meth:`event_line`): then a death string after that line does not count.
        """

        def find() -> tuple[T, int] | None:
            value = check()
            if value is None or value is False:
                return None
            return value, _AFTER_EVERYTHING if line_of is None else line_of(value)

        return self._wait(find, lambda _v, _i: None, what, timeout, hang=hang, idle=idle,
                          poll=poll)

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
            scan = max(scan, self._base)
            while scan < self._count:
                m = rx.search(self._lines[scan - self._base].text, col if scan == line else 0)
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
        # idle=False: text may come from the host (console notices) while the guest is idle
        return self._wait(find, consume, what, timeout, idle=False)

    def first_line(self, pattern: str | re.Pattern[str], timeout: float,
                   *, partial: bool = False) -> re.Match[str]:
        """Wait for the first line since power-on (still in memory) matching ``pattern``;
        the cursor does not move."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        scan = 0
        head_done = False

        def find() -> tuple[re.Match[str], int] | None:
            nonlocal scan, head_done
            if not head_done:
                head_done = True
                for k, line in enumerate(self._head[: max(0, min(len(self._head), self._base))]):
                    m = rx.search(line.text)
                    if m is not None:
                        return m, k
            scan = max(scan, self._base)
            while scan < self._count:
                m = rx.search(self._lines[scan - self._base].text)
                if m is not None:
                    return m, scan
                scan += 1
            if partial:
                m = rx.search(self._partial)
                if m is not None:
                    return m, scan
            return None

        what = f"a line matching {rx.pattern!r}" + (" (incomplete line included)"
                                                   if partial else "")
        return self._wait(find, lambda _m, _i: None, what, timeout, idle=False)

    def expect_event(self, kind: str, timeout: float, **fields: object) -> Event:
        """Wait for the next event of ``kind`` (at or after the cursor line) matching ``fields``.

        A field filter is a value to compare or a predicate. The match consumes its line.
        """
        self.profile.spec(kind)  # unknown kinds fail now, not after the timeout
        with self._cond:
            head_end = min(len(self._event_head), self._event_base)
            start = bisect.bisect_left(self._event_head, self._cursor[0], 0, head_end,
                                       key=lambda kept: kept[1])
            if start == head_end:
                start = self._event_base + bisect.bisect_left(self._event_lines,
                                                              self._cursor[0])

        def consume(_: Event, index: int) -> None:
            self._cursor = (index + 1, 0)

        find = self._event_finder(kind, fields, start)
        return self._wait(find, consume, _describe_event(kind, fields), timeout)

    def first_event(self, kind: str, timeout: float, **fields: object) -> Event:
        """Wait for the first event of ``kind`` since the start; the cursor does not move."""
        return self.next_event(kind, timeout, 0, **fields)

    def next_event(self, kind: str, timeout: float, start: int, **fields: object) -> Event:
        """Wait for the first event of ``kind`` at position ``start`` or later of
        :attr:`events`; the cursor does not move."""
        self.profile.spec(kind)
        find = self._event_finder(kind, fields, start)
        return self._wait(find, lambda _e, _i: None, _describe_event(kind, fields), timeout)

    def _event_finder(self, kind: str, fields: dict[str, object],
                      start: int) -> Callable[[], tuple[Event, int] | None]:
        """A scan over events from position `start` that resumes where it stopped."""
        scan = start

        def find() -> tuple[Event, int] | None:
            nonlocal scan
            for position, event, line in self._kept_events(scan):
                if event.kind == kind and event.matches(**fields):
                    scan = position
                    return event, line
                scan = position + 1
            return None

        return find

    def send_line(self, text: str) -> None:
        """Send ``text`` and the profile's input terminator (CR, what a UEFI program reading
        the console expects, unless the profile says otherwise)."""
        self.write(text.encode("utf-8") + self.profile.interaction.input_end.encode("utf-8"))

    def write(self, data: bytes) -> None:
        """Send raw bytes (the guest is no longer idle at its prompt)."""
        with self._cond:
            self._input_since_prompt = True
        self._transport.write(data)

    # -- internals: waiting -------------------------------------------------------------

    def _wait(
        self,
        find: Callable[[], tuple[T, int] | None],
        consume: Callable[[T, int], None],
        what: str,
        timeout: float,
        *,
        hang: bool = True,
        idle: bool = True,
        poll: float | None = None,
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
                now = time.monotonic()
                if death is not None:
                    # the death line may still be arriving, and may be the awaited one:
                    # look again once its context is in
                    until = death.seen_at + self.death_context
                    if now < until and self._eof is None:
                        self._cond.wait(until - now)
                        continue
                    raise self._death_error(death, what)
                if self._failure is not None:
                    raise self._failure
                elapsed = now - start
                if self._eof is not None:
                    raise ConsoleClosed(
                        f"console closed while waiting for {what} "
                        f"({elapsed:.1f} s into a {timeout:g} s wait): {self._eof}",
                        last_lines=self._tail(self._count),
                        log_path=self.log_path,
                    )
                if hang and self._hang is not None and self._last_byte <= self._hang.last_byte:
                    raise self._timeout(f"{self._hang.headline}; this boot was judged hung "
                                        f"earlier, so waiting for {what} fails at once",
                                        what, timeout, quiet=True)
                if now >= deadline:
                    raise self._timeout(f"timed out after {timeout:g} s waiting for {what}",
                                        what, timeout)
                wake = deadline
                if poll is not None:
                    wake = min(wake, now + poll)
                if idle and self._prompt is not None and self._idle():
                    idle_at = max(self._prompt_at, self._last_byte, start) + self.idle_timeout
                    if now >= idle_at:
                        raise self._timeout(
                            f"the guest is idle at its prompt ({self._prompt.line!r}) and "
                            f"will not print {what} without input (waited "
                            f"{now - start:.1f} s)", what, timeout)
                    wake = min(wake, idle_at)
                if hang and self.quiet_timeout is not None:
                    quiet_at = max(self._last_byte, start) + self.quiet_timeout
                    if now >= quiet_at and self._idle() and self._prompt is not None:
                        raise self._timeout(  # waiting at its prompt is not a hang
                            f"the guest has been idle at its prompt ({self._prompt.line!r}) "
                            f"for {self.quiet_timeout:g} s while waiting for {what}",
                            what, timeout)
                    if now >= quiet_at:
                        headline = (f"the guest went quiet: no console output for "
                                    f"{self.quiet_timeout:g} s while waiting for {what} (it "
                                    f"looks hung)")
                        self._hang = _Hang(headline, self._last_byte)
                        raise self._timeout(f"{headline}; gave up {now - start:.1f} s into a "
                                            f"{timeout:g} s wait", what, timeout, quiet=True)
                    wake = min(wake, quiet_at)
                self._cond.wait(max(0.0, wake - now))

    def _timeout(self, headline: str, what: str, timeout: float, *, quiet: bool = False
                 ) -> ExpectTimeout:
        return ExpectTimeout(headline, awaited=what, timeout=timeout, quiet=quiet,
                             last_lines=self._tail(self._count), log_path=self.log_path)

    def _death_error(self, death: _Death, what: str) -> DeathStringSeen:
        """Collect the lines printed within ``death_context`` after the death line."""
        until = death.seen_at + self.death_context
        while self._eof is None and (left := until - time.monotonic()) > 0:
            self._cond.wait(left)
        until_rel = until - self.log.t0
        end = max(death.index + 1, self._base)
        while end < self._count and self._lines[end - self._base].time <= until_rel:
            end += 1
        context = [line.text for _, line in self._window(death.index + 1, end)]
        return DeathStringSeen(
            f"death string {death.pattern!r} seen while waiting for {what}: {death.line}",
            pattern=death.pattern,
            line=death.line,
            context=context,
            last_lines=self._tail(end, with_partial=end >= self._count),
            log_path=self.log_path,
        )

    def _window(self, start: int, end: int) -> list[tuple[int, Line]]:
        start = max(start, self._base)
        return [(k, self._lines[k - self._base]) for k in range(start, min(end, self._count))]

    def _tail(self, end: int, count: int = TAIL_LINES, with_partial: bool = True) -> list[str]:
        tail = [line.text for _, line in self._window(end - count, end)]
        if with_partial and end >= self._count and self._partial:
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
        except ConfigError as exc:  # a profile pattern froze: every wait says which
            with self._cond:
                self._failure = exc
            self._finish(f"console reader stopped: {exc}")
        except Exception as exc:  # a bug here must not leave waiters hanging
            self._finish(f"console reader failed: {exc!r}")

    def _ingest(self, data: bytes, now: float) -> None:
        text = self.log.append(data, now)
        rel = now - self.log.t0
        complete: list[Line] = []
        partial, partial_time = self._partial, self._partial_time
        pieces = text.split("\n")
        for piece in pieces[:-1]:
            line = partial + piece
            started = rel if partial_time is None else partial_time
            while len(line) > MAX_LINE_CHARS:
                complete.append(Line(line[:MAX_LINE_CHARS], started))
                line = line[MAX_LINE_CHARS:]
            complete.append(Line(line, started))
            partial, partial_time = "", None
        if pieces[-1]:
            partial += pieces[-1]
            partial_time = rel if partial_time is None else partial_time
            while len(partial) > MAX_LINE_CHARS:
                complete.append(Line(partial[:MAX_LINE_CHARS], partial_time))
                partial = partial[MAX_LINE_CHARS:]
        self._publish(complete, partial, partial_time, now)

    def _publish(
        self,
        complete: list[Line],
        partial: str,
        partial_time: float | None,
        now: float,
    ) -> None:
        base = self._count  # only this thread appends, so reading it unlocked is safe
        events: list[tuple[int, Event]] = []
        deaths: list[_Death] = []
        skip, partial_death = self._partial_kinds, self._partial_death
        finished_death = complete[0].text if partial_death and complete else None
        for offset, line in enumerate(complete):
            events.extend((base + offset, e)
                          for e in self._parser.feed(line.text, line.time, skip))
            if not partial_death:
                pattern = self.profile.death_match(line.text)
                if pattern is not None:
                    deaths.append(_Death(base + offset, pattern.pattern, line.text, now))
            skip, partial_death = frozenset(), False
        index = base + len(complete)
        if partial:  # prompts and other partial markers, and deaths, on the incomplete line
            found = self.profile.parse_partial(partial, partial_time or 0.0, skip)
            events.extend((index, e) for e in found)
            skip = skip | {e.kind for e in found}
            if not partial_death:
                pattern = self.profile.death_match(partial)
                if pattern is not None:
                    deaths.append(_Death(index, pattern.pattern, partial, now))
                    partial_death = True
        with self._cond:
            self._chunks += 1
            if self._first_byte is None:
                self._first_byte = now - self.log.t0
            self._last_byte = now
            self._hang = None  # it printed: not hung (any more)
            self._append_lines(complete)
            self._partial, self._partial_time = partial, partial_time
            self._partial_kinds, self._partial_death = skip, partial_death
            for line_index, event in events:
                # Other events of the prompt's own line do not end it: a prompt seen on the
                # unfinished line is followed, once the line ends, by the line's other events.
                if event.kind == PROMPT:
                    self._at_prompt, self._prompt_line = True, line_index
                    self._prompt, self._prompt_at = event, now
                    self._input_since_prompt = False
                elif line_index != self._prompt_line:
                    self._at_prompt = False
            self._append_events(events)
            if finished_death is not None and self._deaths and self._deaths[-1].index == base:
                self._deaths[-1].line = finished_death  # seen unfinished, now whole
            self._deaths.extend(deaths)
            self._cond.notify_all()

    def _append_events(self, events: list[tuple[int, Event]]) -> None:
        """Add events to the window, keep the head, drop the oldest beyond the bound."""
        room = HEAD_EVENTS - len(self._event_head)
        if room > 0:
            self._event_head.extend((event, line) for line, event in events[:room])
        for line_index, event in events:
            self._events.append(event)
            self._event_lines.append(line_index)
        if len(self._events) > WINDOW_EVENTS:
            drop = len(self._events) - WINDOW_EVENTS // 2  # drop in batches
            del self._events[:drop]
            del self._event_lines[:drop]
            self._event_base += drop

    def _append_lines(self, complete: list[Line]) -> None:
        """Add lines to the window, keep the head, drop the oldest beyond the bound."""
        if len(self._head) < HEAD_LINES:
            self._head.extend(complete[: HEAD_LINES - len(self._head)])
        self._lines.extend(complete)
        self._count += len(complete)
        self._window_chars += sum(len(line.text) + 1 for line in complete)
        if self._window_chars > WINDOW_CHARS:
            drop, freed = 0, 0
            target = self._window_chars - WINDOW_CHARS // 2  # drop in batches
            while drop < len(self._lines) - 1 and freed < target:
                freed += len(self._lines[drop].text) + 1
                drop += 1
            del self._lines[:drop]
            self._base += drop
            self._window_chars -= freed

    def _finish(self, reason: str) -> None:
        """End of stream: a cut last line stays incomplete (it is not parsed as complete)."""
        try:
            tail = self.log.finish()
        except ValueError:  # log already closed
            tail = ""
        with self._cond:
            if tail:
                self._partial += tail
            self._eof = reason
            self._cond.notify_all()


def _describe_event(kind: str, fields: dict[str, object]) -> str:
    filters = ", ".join(
        f"{k}=<predicate>" if callable(v) else f"{k}={v!r}" for k, v in fields.items()
    )
    return f"event {kind!r}" + (f" with {filters}" if filters else "")

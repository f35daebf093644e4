"""The Console over a real socket pair: lines, expect, events, death strings, hangs, EOF."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_baremetal.console.console import Console
from pytest_baremetal.console.log import read_raw
from pytest_baremetal.console.transport import SocketTransport
from pytest_baremetal.errors import (
    ConfigError,
    ConsoleClosed,
    DeathStringSeen,
    ExpectTimeout,
)
from pytest_baremetal.markers.events import Event
from pytest_baremetal.markers.profile import reference_profile

PROLOGUE = b"\x1b[=3h\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H"


class Guest:
    """The far end of the console socket, with helpers that write later from a thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._threads: list[threading.Thread] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def lines(self, *lines: str) -> None:
        self.send(b"".join(line.encode() + b"\r\r\n" for line in lines))

    def later(self, delay: float, action: Callable[[], None]) -> None:
        def run() -> None:
            time.sleep(delay)
            action()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=10)
        self.sock.close()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Console, Guest]]:
    host_end, guest_end = socket.socketpair()
    console = Console(SocketTransport(host_end), tmp_path, reference_profile(), "dut").start()
    guest = Guest(guest_end)
    try:
        yield console, guest
    finally:
        guest.join()
        console.close()
        assert console._thread is not None and not console._thread.is_alive()


def test_lines_logs_and_expect(pair: tuple[Console, Guest], tmp_path: Path) -> None:
    console, guest = pair
    sent = PROLOGUE + b"BdsDxe: starting Boot0001\r\n[boot] name=g version=1.2.3\r\r\n"
    for i in range(len(sent)):  # byte by byte: escapes and lines split everywhere
        guest.send(sent[i : i + 1])
    m = console.expect(r"version=(\S+)", timeout=5)
    assert m.group(1) == "1.2.3"
    assert [line.text for line in console.lines] == [
        "BdsDxe: starting Boot0001",
        "[boot] name=g version=1.2.3",
    ]
    assert all(line.time >= 0 for line in console.lines)
    assert console.first_byte_time is not None
    assert console.log_path == tmp_path / "dut.console.log"
    assert console.text_path == tmp_path / "dut.console.txt"
    assert [e.kind for e in console.events] == ["loader", "boot"]
    console.close()
    assert read_raw(console.log_path) == sent
    assert console.text_path.read_text() == (
        "BdsDxe: starting Boot0001\n[boot] name=g version=1.2.3\n"
    )


def test_expect_consumes_forward(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    guest.lines("tick 1 a=1 b=2", "tick 2", "other")
    assert console.expect(r"tick (\d)", 5).group(1) == "1"
    assert console.expect(r"b=(\d)", 5).group(1) == "2"  # rest of the same line
    assert console.expect(re.compile(r"tick (\d)"), 5).group(1) == "2"
    with pytest.raises(ExpectTimeout):
        console.expect(r"tick", 0.2)
    assert console.expect("other", 1).group(0) == "other"


def test_expect_waits_for_later_lines(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    guest.later(0.2, lambda: guest.lines("[done] status=ok"))
    start = time.monotonic()
    assert console.expect(r"^\[done\] status=(\w+)", 5).group(1) == "ok"
    assert 0.15 < time.monotonic() - start < 2


def test_partial_line_prompt(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    guest.send(b"[repl] ready\r\n> ")
    with pytest.raises(ExpectTimeout):
        console.expect("> ", 0.2)  # only complete lines by default
    console.expect("> ", 5, partial=True)
    assert console.partial_line == "> "
    console.send_line("hello")
    assert guest.sock.recv(100) == b"hello\r"
    guest.send(b'hello\r\n[repl] prompt="hello"\r\n')
    event = console.expect_event("repl_prompt", 5)
    assert event.fields["prompt"] == "hello"
    assert console.lines[-2].text == "> hello"


def test_expect_event_filters_and_cursor(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    perf = (
        "[perf] repeat={} prefill_tokens=5 prefill_ms=1.000 prefill_tok_s=5000.000 "
        "decode_tokens=8 decode_ms=4.000 decode_tok_s={}.000 first_token_ms=1.000"
    )
    guest.lines(perf.format(1, 100), perf.format(2, 2000), "after", perf.format(3, 300))
    second = console.expect_event("perf", 5, decode_tok_s=lambda v: v > 1000)
    assert second.fields["repeat"] == 2
    assert console.expect("after", 5)  # the event consumed its line
    assert console.expect_event("perf", 5).fields["repeat"] == 3
    with pytest.raises(ExpectTimeout, match=r"event 'perf' with repeat=1"):
        console.expect_event("perf", 0.1, repeat=1)
    # first_event searches from the start and does not move the cursor
    assert console.first_event("perf", 1, repeat=1).fields["decode_tok_s"] == 100.0
    assert console.find_events("perf", repeat=3)[0].fields["decode_tok_s"] == 300.0
    with pytest.raises(ConfigError, match="no such event kind"):
        console.expect_event("gpu", 60)


def test_timeout_message_shows_the_last_20_lines(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    guest.lines(*(f"line {i}" for i in range(1, 26)))
    console.expect("line 25", 5)
    guest.send(b"incomplete")
    time.sleep(0.1)
    with pytest.raises(ExpectTimeout) as info:
        console.expect(r"\[done\]", 0.3)
    lines = str(info.value).splitlines()
    assert lines[0] == "timed out after 0.3 s waiting for pattern '\\\\[done\\\\]'"
    assert lines[1] == f"--- last 20 lines of {console.log_path} ---"
    assert lines[2:] == [f"line {i}" for i in range(7, 26)] + ["incomplete"]
    assert info.value.log_path == console.log_path and not info.value.quiet


def test_death_string_seen_earlier_fails_the_next_expect(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    guest.lines("[cpu] kernel=avx2 reason=auto")
    guest.lines(
        "!!!! X64 Exception Type - 0D(#GP - General Protection)  CPU Apic ID - 00000000 !!!!",
        "RIP  - 000000007E5A1234, CS  - 0000000000000038, RFLAGS - 0000000000010206",
    )
    guest.later(0.15, lambda: guest.lines("RAX  - 0000000000000000"))
    guest.later(1.2, lambda: guest.lines("much later"))
    # what came before the death is still found
    assert console.expect_event("kernel", 5).fields["kernel"] == "avx2"
    start = time.monotonic()
    with pytest.raises(DeathStringSeen) as info:
        console.expect(r"\[done\]", 30)
    assert time.monotonic() - start < 2
    err = info.value
    assert err.pattern == "X64 Exception Type"
    assert err.line.startswith("!!!! X64 Exception Type - 0D")
    assert err.context == (
        "RIP  - 000000007E5A1234, CS  - 0000000000000038, RFLAGS - 0000000000010206",
        "RAX  - 0000000000000000",
    )
    text = str(err).splitlines()
    assert text[0].startswith("death string 'X64 Exception Type' seen while waiting for")
    assert text[1] == f"--- last 4 lines of {console.log_path} ---"
    assert "much later" not in str(err)
    with pytest.raises(DeathStringSeen):  # and it stays fatal
        console.expect_event("done", 30)


def test_a_value_located_before_the_death_line_is_returned(
        pair: tuple[Console, Guest]) -> None:
    """The boot waits for the banner with ``wait_until``: when the banner and a crash right
    after it are both in before the wait looks (a loaded machine), the banner still wins,
    and the crash fails the next wait."""
    console, guest = pair
    guest.lines("[cpu] kernel=avx2 reason=auto",
                "!!!! X64 Exception Type - 06(#UD - Invalid Opcode)  CPU Apic ID - 0 !!!!")
    deadline = time.monotonic() + 5
    while len(console.tail(2)) < 2 or not console.find_events("kernel"):
        assert time.monotonic() < deadline
        console.wait_for_output(0.1)
    time.sleep(console.death_context + 0.1)  # the crash is complete too

    def kernel() -> Event | None:
        found = console.find_events("kernel")
        return found[0] if found else None

    with pytest.raises(DeathStringSeen):  # located "after everything": the crash wins
        console.wait_until(kernel, "the kernel line", 5)
    event = console.wait_until(kernel, "the kernel line", 5, line_of=console.event_line)
    assert event.fields["kernel"] == "avx2"
    assert console.event_line(event) == 0
    with pytest.raises(DeathStringSeen):
        console.expect_event("done", 5)


def test_death_while_waiting_is_immediate(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    guest.later(0.1, lambda: guest.lines("ASSERT [BdsDxe] Bds.c(12): FALSE"))
    start = time.monotonic()
    with pytest.raises(DeathStringSeen, match=r"ASSERT \[BdsDxe\]"):
        console.expect("never", 30)
    assert time.monotonic() - start < 0.1 + console.death_context + 1


def test_awaiting_the_death_line_itself_is_allowed(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    guest.lines(
        '[error] where=cfg file=run.cfg reason=unknown_key detail="colour"',
        "[done] status=error",
    )
    error = console.expect_event("error", 5, reason="unknown_key")
    assert error.fields["file"] == "run.cfg"
    assert console.expect_event("done", 5).fields["status"] == "error"


def test_quiet_guest_is_reported_as_hung(tmp_path: Path) -> None:
    host_end, guest_end = socket.socketpair()
    profile = reference_profile()
    with Console(SocketTransport(host_end), tmp_path, profile, quiet_timeout=0.3) as console:
        guest_end.sendall(b"[boot] name=g\r\n")
        start = time.monotonic()
        with pytest.raises(ExpectTimeout) as info:
            console.expect(r"\[done\]", 30)
        assert 0.25 < time.monotonic() - start < 2
        assert info.value.quiet
        assert "went quiet: no console output for 0.3 s" in str(info.value).splitlines()[0]
        assert "[boot] name=g" in info.value.last_lines

        # the hang is remembered: the next wait fails at once with the same reason
        start = time.monotonic()
        with pytest.raises(ExpectTimeout) as again:
            console.first_event("done", 30)
        assert time.monotonic() - start < 0.2 and again.value.quiet
        assert "judged hung earlier" in str(again.value)
        assert "no console output for 0.3 s" in str(again.value)
        # ...until the guest prints again
        guest_end.sendall(b"awake\r\n")
        while console.line_count < 2:
            assert console.wait_for_output(5)

        # output that keeps coming is not a hang, even over a long wait
        def drip() -> None:
            for i in range(8):
                guest_end.sendall(f"busy {i}\r\n".encode())
                time.sleep(0.1)
            guest_end.sendall(b"[done] status=ok\r\n")

        writer = threading.Thread(target=drip)
        writer.start()
        try:
            assert console.expect_event("done", 30).fields["status"] == "ok"
        finally:
            writer.join()
    guest_end.close()


def test_eof_while_expecting(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    guest.send(b"[boot] name=g\r\nlast words")
    guest.later(0.1, lambda: guest.sock.shutdown(socket.SHUT_WR))
    with pytest.raises(ConsoleClosed) as info:
        console.expect(r"\[done\]", 30)
    assert "console closed while waiting for pattern" in str(info.value).splitlines()[0]
    assert info.value.last_lines == ("[boot] name=g", "last words")
    assert console.eof is not None
    # the unterminated last line stays incomplete: only a partial match sees it
    assert console.partial_line == "last words" and console.line_count == 1
    assert console.expect("last (words)", 1, partial=True).group(1) == "words"


def test_line_cut_at_end_of_stream_is_no_event(tmp_path: Path) -> None:
    """`decode_tok_s=12` out of a cut `...=123.4` is not a measurement."""
    perf = b"[perf] repeat=1 prefill_tokens=4 decode_tok_s=12"
    console = Console(ScriptedTransport([b"[boot] name=g\r\n", perf]), tmp_path,
                      reference_profile(), "cut")
    with console:
        with pytest.raises(ConsoleClosed):
            console.first_event("perf", 5)
        assert not console.find_events("perf")
        assert console.partial_line == perf.decode()
        assert console.tail()[-1] == perf.decode()


class ScriptedTransport:
    """An in-memory transport: hands out chunks, then reports end of stream."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.written = b""
        self.closed = False

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if not self.chunks:
            raise ConsoleClosed("scripted end")
        return self.chunks.pop(0)[:max_bytes]

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


def test_scripted_transcript_events(tmp_path: Path) -> None:
    data = PROLOGUE + (
        b"[gen] begin repeat=1 prompt_tokens=2 steps=3 temperature=0.000 topp=0.900 seed=1\r\r\n"
        b"Hello w\xc3"
        b"\xb6rld\r\r\n[gen] end tokens=3\r\r\n[gen] prompt_ids=1,2\r\r\n"
        b"[gen] ids=5,6,7\r\r\n[done] status=ok\r\r\n"
    )
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    transport = ScriptedTransport(chunks)
    console = Console(transport, tmp_path, reference_profile(), "scripted")
    with console:
        done = console.expect_event("done", 5)
        assert done.fields["status"] == "ok"
        end = console.first_event("gen_end", 1)
        assert end.fields["text"] == "Hello wörld" and end.fields["tokens"] == 3
        console.send_line("x")
    assert transport.closed and transport.written == b"x\r"
    assert read_raw(console.log_path) == data


def test_helpers_for_waits_built_outside(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    assert not console.wait_for_output(0.05)
    guest.later(0.05, lambda: guest.send(b"partial"))
    assert console.wait_for_output(5)
    console.raise_if_failed("anything")  # nothing fatal yet
    guest.lines("", '[error] where=fs file=model.bin reason=missing detail="-"')
    deadline = time.monotonic() + 5
    while not console.find_events("error") and time.monotonic() < deadline:
        console.wait_for_output(0.1)
    with pytest.raises(DeathStringSeen, match="while waiting for the banner"):
        console.raise_if_failed("the banner")
    assert not console.closed
    guest.sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 5
    while not console.closed and time.monotonic() < deadline:
        console.wait_for_output(0.1)
    assert console.closed


def test_output_that_cleans_to_nothing_still_counts(pair: tuple[Console, Guest]) -> None:
    console, guest = pair
    guest.later(0.05, lambda: guest.send(PROLOGUE))
    assert console.wait_for_output(5)
    assert console.first_byte_time is not None and console.partial_line == ""

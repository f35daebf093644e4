"""Interactive builds through the Dut: a REPL guest (a Python stand-in speaking exactly like
the fixture guest's chat mode, tests/fixture_guest/chat.c) on a socket, with its profile.
The real guest runs the same script in test_chat_guest_e2e.py."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_baremetal.boards import Board, Timeouts
from pytest_baremetal.console import Console, SocketTransport
from pytest_baremetal.dut import BootInfo, Dut
from pytest_baremetal.errors import ExpectTimeout
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers.profile import load_profile
from pytest_baremetal.pool import BootPool
from pytest_baremetal.targets.qemu.spec import QemuSpec

PROFILE = Path(__file__).resolve().parent / "fixture_guest" / "chat.yaml"
BANNER = (b"llm-baremetal REPL v0.9.2 (build fx-1) firmware=EDK II\r\r\n"
          b"SGEMM kernel: AVX2+FMA (sse2=1 avx=1 avx2=1 fma=1)\r\r\n"
          b"Ready.\r\r\n")


class ChatGuest:
    """Talks like chat.c: prompt without newline, echo, answer, stats; 'hang' stops it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _run(self) -> None:
        try:
            self._send(BANNER)
            while True:
                self._send(b"\r\r\nYou: ")
                line = b""
                while not line.endswith(b"\r"):
                    data = self.sock.recv(1)
                    if not data:
                        return
                    line += data
                    self._send(data.replace(b"\r", b"\r\r\n"))  # echo
                text = line[:-1].decode()
                if text == "/quit":
                    self._send(b"Bye.\r\r\n")
                    return
                if text == "hang":
                    self._send(b"AI: thinking")
                    time.sleep(30)
                    return
                self._send(f"AI: about {text}\r\r\n".encode()
                           + b"[llmk][budget] prefill=3 decode=24 cap=256\r\r\n"
                           + b"and more words\r\r\n\r\r\n"
                           + b"[stats] tokens=24 time_s=0 tok/s=inf\r\r\n")
        except OSError:
            return


class FakePower:
    senses_off = True

    def __init__(self) -> None:
        self.on = True

    def wait_off(self, timeout: float) -> int | None:
        return 0 if not self.on else None

    def off(self) -> None:
        self.on = False

    def is_on(self) -> bool:
        return self.on


@pytest.fixture
def repl(tmp_path: Path) -> Iterator[Dut]:
    host, guest_end = socket.socketpair()
    profile = load_profile(PROFILE)
    console = Console(SocketTransport(host), tmp_path, profile, "chat", quiet_timeout=1.0,
                      idle_timeout=0.5).start()
    guest = ChatGuest(guest_end)
    board = Board(name="fake", kind="qemu", spec=QemuSpec(),
                  timeouts=Timeouts(run=60, quiet=1.0))
    dut = Dut(board, GuestConfig.of({}), console, FakePower(), profile,
              BootInfo("fake", "tcg", "tcg"), guest)  # build: the guest, for the tests
    try:
        yield dut
    finally:
        console.close()
        guest_end.close()
        guest.thread.join(timeout=5)


def test_ask_twice_then_the_run_is_over_at_the_prompt(repl: Dut) -> None:
    assert repl.interactive
    first = repl.ask("Once upon a time")
    second = repl.ask("The little dog")
    assert first.text == "about Once upon a time\nand more words"  # no [llmk], no stray \n
    assert second.text == "about The little dog\nand more words"
    assert first.tokens == 24
    end = repl.console.find_events("gen_end")[0]
    assert end.fields["decode_tok_s"] is None and end.raw_fields["decode_tok_s"] == "inf"
    prompt = repl.wait_done()
    assert prompt.kind == "prompt" and prompt.line == "You: "
    assert [g.text.split("\n")[0] for g in repl.generations()] == [
        "about Once upon a time", "about The little dog"]
    assert repl.events("kernel")[0].fields == {"kernel": "avx2", "reason": "auto"}


def test_a_wait_needing_input_fails_fast_at_the_prompt(repl: Dut) -> None:
    repl.wait_done()
    start = time.monotonic()
    with pytest.raises(ExpectTimeout) as info:
        repl.event("gen_end", timeout=60)
    assert time.monotonic() - start < 10
    assert "idle at its prompt ('You: ')" in str(info.value)
    assert not info.value.quiet  # idle is not hung: the next question still works
    assert repl.ask("again").text.startswith("about again")


def test_a_hang_in_an_answer_is_detected_and_remembered(repl: Dut) -> None:
    start = time.monotonic()
    with pytest.raises(ExpectTimeout) as info:
        repl.ask("hang")
    assert time.monotonic() - start < 20  # the 1 s quiet period, not the 60 s run timeout
    assert info.value.quiet and "looks hung" in str(info.value)
    assert info.value.last_lines[-1] == "AI: thinking"
    start = time.monotonic()
    with pytest.raises(ExpectTimeout, match="judged hung earlier") as again:
        repl.ask("anything")
    assert time.monotonic() - start < 0.5 and again.value.quiet


def test_quit_and_the_prompt_as_a_partial_line(repl: Dut) -> None:
    repl.wait_done()
    assert repl.console.partial_line == "You: "
    repl.ask("one")
    repl.quit()
    repl.expect(r"^Bye\.$", timeout=10)


def test_pool_powers_an_idle_repl_off_at_once(repl: Dut) -> None:
    repl.ask("one")
    repl.ask("two")
    other = Dut(repl.board, GuestConfig.of({"seed": 7}), repl.console, FakePower(),
                repl.profile, repl.info, None)
    boots = iter([repl, other])
    pool = BootPool(lambda _b, _c: next(boots))
    pool.get("fake", GuestConfig.of({}))
    start = time.monotonic()
    assert pool.get("fake", GuestConfig.of({"seed": 7})) is other
    assert time.monotonic() - start < 0.5  # no wait for a `done` the REPL never prints
    assert not repl.power.is_on()


def test_lines_without_events_after_the_prompt_keep_it_idle(repl: Dut) -> None:
    """A host notice (or an echo) after the prompt is not the guest leaving it."""
    repl.wait_done()
    assert isinstance(repl.build, ChatGuest)
    repl.build.sock.sendall(b"[bm] console lost on /dev/ttyUSB0\r\n")
    repl.expect(r"console lost", timeout=10)
    assert repl.wait_done(timeout=10).kind == "prompt"
    assert repl.ask("after").text.startswith("about after")


def test_idle_at_the_prompt_is_not_remembered_as_a_hang(repl: Dut) -> None:
    repl.wait_done()
    with pytest.raises(ExpectTimeout) as info:
        repl.expect(r"never printed", timeout=60)  # text waits do not fail fast...
    assert "idle at its prompt" in str(info.value) and not info.value.quiet  # ...nor hang
    assert repl.ask("still there").text.startswith("about still there")


def test_a_prompt_line_arriving_in_two_reads_stays_idle(tmp_path: Path) -> None:
    """The reference's `[repl] ready` is a prompt (matched on the unfinished line) and a
    `repl_ready` event (matched once the line ends): the second must not end the idle state
    (it did when the line's end came in a later read, so a later ask() waited 120 s)."""
    host, guest_end = socket.socketpair()
    profile = load_profile(Path(__file__).resolve().parents[1] / "pytest_baremetal"
                           / "profiles" / "reference.yaml")
    console = Console(SocketTransport(host), tmp_path, profile, "ref", quiet_timeout=5.0,
                      idle_timeout=0.5).start()
    try:
        guest_end.sendall(b"[boot] name=bm-ref-guest version=0.1.0\r\r\n[repl] ready")
        console.wait_until(lambda: console.idle_prompt, "the prompt", 5.0)
        time.sleep(0.2)  # the reader has handled the unfinished line on its own
        guest_end.sendall(b"\r\r\n")
        console.wait_until(lambda: console.line_count >= 2 or None, "the line's end", 5.0)
        assert console.idle_prompt is not None
        assert [e.kind for e in console.events][-2:] == ["prompt", "repl_ready"]
    finally:
        console.close()
        guest_end.close()

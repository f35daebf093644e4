"""The console parser neither loses nor invents events (#12): bare CR, deaths on the last
incomplete line, bounded memory, non-finite numbers, profile patterns that cannot freeze."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pytest_baremetal.console import console as console_mod
from pytest_baremetal.console.console import Console
from pytest_baremetal.errors import ConfigError, ConsoleClosed, DeathStringSeen, ExpectTimeout
from pytest_baremetal.markers.patterns import PatternTimeout
from pytest_baremetal.markers.profile import profile_from_dict, reference_profile


class Chunks:
    """A transport that hands out the given chunks, then (optionally) ends the stream."""

    def __init__(self, chunks: list[bytes], end: bool = True) -> None:
        self.chunks = list(chunks)
        self.end = end

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if not self.chunks:
            if self.end:
                raise ConsoleClosed("end of the recording")
            time.sleep(timeout)
            return b""
        return self.chunks.pop(0)

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


PROGRESS = b"".join(b"[net] progress file=m.bin pct=%d bytes=%d\r" % (p, p * 10)
                    for p in (10, 20, 30)) + b"[net] progress file=m.bin pct=40 bytes=400\r\n"


def test_bare_cr_ends_a_line(tmp_path: Path) -> None:
    with Console(Chunks([PROGRESS]), tmp_path, reference_profile()) as console:
        with pytest.raises(ConsoleClosed):
            console.first_event("done", 5)
        assert [e.fields["pct"] for e in console.find_events("download")] == [10, 20, 30, 40]


@pytest.mark.parametrize("split", range(1, 6))
def test_cr_cr_lf_is_one_line_end_across_reads(tmp_path: Path, split: int) -> None:
    data = b"[boot] name=a\r\r\n[boot] name=b\r\n[cfg] steps=3\r\r\n"
    cut = data.index(b"\r") + split - 1
    chunks = [data[:cut], data[cut:cut + 1], data[cut + 1:]]
    with Console(Chunks(chunks), tmp_path, reference_profile()) as console:
        with pytest.raises(ConsoleClosed):
            console.first_event("done", 5)
        assert [line.text for line in console.lines] == [
            "[boot] name=a", "[boot] name=b", "[cfg] steps=3"]


def test_death_on_the_last_incomplete_line_is_seen(tmp_path: Path) -> None:
    dump = b"[boot] name=g\r\n!!!! X64 Exception Type - 06(#UD - Invalid Opcode)  CPU Apic ID"
    with Console(Chunks([dump], end=False), tmp_path, reference_profile(),
                 quiet_timeout=30, death_context=0.1) as console:
        start = time.monotonic()
        with pytest.raises(DeathStringSeen) as info:
            console.first_event("done", 30)
        assert time.monotonic() - start < 5
        assert "X64 Exception Type" in info.value.line


def test_non_finite_numbers_are_not_measured(tmp_path: Path) -> None:
    profile = reference_profile()
    for raw in ("inf", "-inf", "nan", "NaN", "Infinity"):
        (perf,) = profile.parse(f"[perf] repeat=1 decode_tok_s={raw} decode_ms=0.000")
        assert perf.fields["decode_tok_s"] is None, raw
        assert perf.raw_fields["decode_tok_s"] == raw
        assert perf.fields["decode_ms"] == 0.0


def test_memory_stays_bounded_and_events_stay(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console_mod, "WINDOW_CHARS", 64 * 1024)
    monkeypatch.setattr(console_mod, "HEAD_LINES", 10)
    line = b"[perf] repeat=%d prefill_tokens=4 decode_tok_s=123.4\r\n"
    chunks = [b"".join(line % (k * 100 + i) for i in range(100)) for k in range(100)]
    with Console(Chunks(chunks), tmp_path, reference_profile()) as console:
        with pytest.raises(ConsoleClosed):
            console.first_event("done", 30)
        assert console.line_count == 10_000
        assert len(console.find_events("perf")) == 10_000
        kept = console.lines
        assert sum(len(x.text) for x in kept) < 2 * 64 * 1024 + 10 * 100
        assert kept[0].text.startswith("[perf] repeat=0 ")  # the head of the boot stays
        assert kept[-1].text.startswith("[perf] repeat=9999 ")
        assert [i for i, _ in console.lines_from(9_998)] == [9_998, 9_999]
        assert console.first_line(r"repeat=5 ", 1).group(0) == "repeat=5 "


def test_events_stay_bounded_with_absolute_positions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A guest printing marker lines forever: the first events and a window of the last
    stay; positions stay absolute, so a scan from an old position resumes correctly."""
    monkeypatch.setattr(console_mod, "WINDOW_EVENTS", 1000)
    monkeypatch.setattr(console_mod, "HEAD_EVENTS", 10)
    line = b"[perf] repeat=%d prefill_tokens=4 decode_tok_s=123.4\r\n"
    chunks = [b"".join(line % (k * 100 + i) for i in range(100)) for k in range(100)]
    chunks.append(b"[done] status=ok\r\n")
    with Console(Chunks(chunks), tmp_path, reference_profile()) as console:
        assert console.first_event("done", 30).fields["status"] == "ok"
        assert console.event_count == 10_001
        kept = console.events
        assert 10 + 500 <= len(kept) <= 10 + 1000
        assert [e.fields["repeat"] for e in kept[:10]] == list(range(10))  # the head stays
        assert kept[-2].fields["repeat"] == 9_999 and kept[-1].kind == "done"
        repeats = [e.fields["repeat"] for e in kept[10:-1]]
        assert repeats == list(range(10_000 - len(repeats), 10_000))  # the window is whole
        assert [e.kind for e in console.events_from(9_999)] == ["perf", "done"]
        assert console.events_from(5)[0].fields["repeat"] == 5  # from the head, then the window
        assert console.next_event("perf", 1, 11).fields["repeat"] == repeats[0]
        assert console.first_event("perf", 1, repeat=3).fields["repeat"] == 3
        last = console.find_events("perf")[-1]
        assert console.event_line(last) == 9_999
        assert console.expect_event("perf", 1).fields["repeat"] == 0  # the cursor is at 0
        assert console.expect_event("perf", 1).fields["repeat"] == 1
        assert console.expect_event("done", 1).kind == "done"


def test_overlong_line_is_cut(tmp_path: Path) -> None:
    blob = b"x" * (console_mod.MAX_LINE_CHARS * 2 + 5)
    with Console(Chunks([blob, b"\r\n[done] status=ok\r\n"]), tmp_path,
                 reference_profile()) as console:
        assert console.first_event("done", 5).fields["status"] == "ok"
        assert [len(x.text) for x in console.lines] == [
            console_mod.MAX_LINE_CHARS, console_mod.MAX_LINE_CHARS, 5, len("[done] status=ok")]


FREEZER = {"name": "freezer", "events": {"slow": {"pattern": "^(a|a)+$"}}}


def test_a_backtracking_pattern_cannot_freeze_the_process(tmp_path: Path) -> None:
    profile = profile_from_dict(FREEZER, "freezer.yaml")
    with Console(Chunks([b"a" * 34 + b"!\r\n"], end=False), tmp_path, profile) as console:
        start = time.monotonic()
        with pytest.raises(PatternTimeout) as info:
            console.first_event("slow", 60)
        assert time.monotonic() - start < 10
    message = str(info.value)
    assert message.startswith("freezer.yaml: events.slow.pattern: pattern '^(a|a)+$' took")
    assert "catastrophic backtracking" in message


@pytest.mark.parametrize(("data", "key"), [
    ({"death": [""]}, "death[0]"),
    ({"death": ""}, "death[0]"),
    ({"death": [".*"]}, "death[0]"),
    ({"events": {"a": "x?"}}, "events.a.pattern"),
    ({"done": "^"}, "done.pattern"),
    ({"generation": {"begin": "b", "end": "e", "drop": ["|"]}}, "generation.drop[0]"),
])
def test_patterns_matching_every_line_are_refused(data: object, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        profile_from_dict(data, "p.yaml")
    assert info.value.key == key
    assert "every line" in str(info.value)


def test_awaited_death_line_arriving_in_pieces_is_returned(tmp_path: Path) -> None:
    """The death string is seen on the unfinished line; the wait for that very event still
    gets it once the line is whole (error paths can be tested on purpose)."""
    chunks = [b"[boot] name=g\r\n[error] ", b"where=model file=m.bin reason=truncated\r\n",
              b"[done] status=error\r\n"]

    class Slow(Chunks):
        def read(self, max_bytes: int, timeout: float) -> bytes:
            time.sleep(0.05)
            return super().read(max_bytes, timeout)

    with Console(Slow(chunks, end=False), tmp_path, reference_profile(),
                 death_context=0.3) as console:
        error = console.first_event("error", 10)
        assert error.fields["reason"] == "truncated"
        assert console.first_event("done", 10).fields["status"] == "error"
        assert console.death_lines == [
            "[error] where=model file=m.bin reason=truncated"]


def test_partial_marker_fires_once_before_the_line_ends(tmp_path: Path) -> None:
    profile = profile_from_dict({"events": {
        "loading": {"pattern": r"^Loading (?P<what>\w+)", "partial": True},
        "loaded": r"^Loading \w+\.+ ok$"}}, "p.yaml")
    with Console(Chunks([b"Loading model", b"...", b" ok\r\n"], end=False), tmp_path,
                 profile) as console:
        first = console.first_event("loading", 5)
        assert first.fields["what"] == "model" and first.line == "Loading model"
        console.first_event("loaded", 5)
        assert [e.kind for e in console.events] == ["loading", "loaded"]


def test_wait_until_polls_outside_conditions_and_false_means_not_yet(tmp_path: Path) -> None:
    """The engine as the boot waits use it: a condition outside the console (a process
    that exits) is polled; False, like None, means "not yet"."""
    flag = threading.Event()
    with Console(Chunks([b"BdsDxe: starting Boot0001\r\n"], end=False), tmp_path,
                 reference_profile(), quiet_timeout=30) as console:
        threading.Timer(0.3, flag.set).start()
        start = time.monotonic()
        assert console.wait_until(flag.is_set, "the flag", 10, poll=0.05) is True
        assert 0.2 < time.monotonic() - start < 5
        with pytest.raises(ExpectTimeout, match=r"timed out after 0\.2 s waiting for never"):
            console.wait_until(lambda: False, "never", 0.2, hang=False)
        assert console.wait_until(lambda: console.line_count, "a line", 5) == 1

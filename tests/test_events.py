"""Typed events from a full, hand-written reference guest transcript (guest/MARKERS.md)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_baremetal.console.clean import clean
from pytest_baremetal.markers.events import (
    Event,
    EventParser,
    convert,
    generations,
    parse_kv,
    unquote,
)
from pytest_baremetal.markers.profile import Profile, reference_profile

PROLOGUE = b"\x1b[=3h\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H"
BDS = (
    b'BdsDxe: loading Boot0001 "UEFI QEMU HARDDISK QM00001 " from '
    b"PciRoot(0x0)/Pci(0x1,0x1)/Ata(Primary,Master,0x0)\r\n"
    b'BdsDxe: starting Boot0001 "UEFI QEMU HARDDISK QM00001 " from '
    b"PciRoot(0x0)/Pci(0x1,0x1)/Ata(Primary,Master,0x0)\r\n"
)
SHA = "3d4f0a2b" * 8
IDS = "263,2462,767,263,2217,3627,4497,29889,13,3118,5131,304"
PROMPT_IDS = "1,403,2501,263,931"


def guest_lines(*lines: str) -> bytes:
    """Lines as the guest prints them through UEFI Print: CR CR LF."""
    return b"".join(line.encode() + b"\r\r\n" for line in lines)


def repeat(k: int) -> bytes:
    return (
        guest_lines(
            f"[gen] begin repeat={k} prompt_tokens=5 steps=12 temperature=0.000 topp=0.900 seed=42"
        )
        + (
            # generated text arrives in pieces, with a newline token inside it
            b" there was a little girl named Lily. She went to the caf\xc3\xa9."
            b"\r\r\nShe liked to play\r\r\n"
        )
        + guest_lines(
            "[gen] end tokens=12",
            f"[gen] prompt_ids={PROMPT_IDS}",
            f"[gen] ids={IDS}",
            f"[perf] repeat={k} prefill_tokens=5 prefill_ms=10.000 prefill_tok_s=500.000 "
            "decode_tokens=12 decode_ms=40.000 decode_tok_s=300.000 first_token_ms=12.500",
        )
    )


TRANSCRIPT = (
    PROLOGUE
    + BDS
    + guest_lines(
        "[boot] name=bm-ref-guest version=0.1.0 build=3f2a9c1-20250101 platform=uefi "
        'fw_vendor="EDK II" fw_revision=0x10000 uefi=2.70',
        "[cfg] mode=script model=model.bin tokenizer=tokenizer.bin "
        'prompt="Once upon a time" steps=12 seed=42 temperature=0.000 topp=0.900 repeats=2 '
        "kernel=auto bench=1 bench_runs=5 slowdown_pct=0.000",
        "[cpu] vendor=GenuineIntel family=6 model=94 sse2=1 avx=1 avx2=1 fma=1 xsave=1 osxsave=0",
        "[cpu] step=cr4_osxsave ok=1",
        "[cpu] step=xcr0 xcr0=0x7 avx_state=1",
        "[cpu] kernel=avx2 reason=auto",
        "[timer] source=acpi_pm tsc_hz=2112345678 calib_ms=50 pm_port=0x608",
        "[bench] name=fibonacci param=24 runs=5 min_cycles=1000 median_cycles=1100 "
        "max_cycles=1500 min_ns=473 median_ns=520 max_ns=710 result=46368 ok=1",
        "[bench] name=sha256 param=4096 runs=5 min_cycles=90000 median_cycles=91000 "
        f"max_cycles=99000 min_ns=42606 median_ns=43079 max_ns=46867 result={SHA} ok=1",
        "[bench] name=fft param=256 runs=5 min_cycles=5000 median_cycles=5100 "
        "max_cycles=6000 min_ns=2367 median_ns=2414 max_ns=2840 result=5-17 ok=1",
        "[bench] done modules=3 failed=0",
        "[model] file=model.bin bytes=1056004 dim=64 hidden_dim=172 layers=5 heads=8 "
        "kv_heads=4 vocab=512 seq_len=256 shared_classifier=1 params=263936",
        "[tokenizer] file=tokenizer.bin bytes=6138 vocab=512 max_token_len=7",
    )
    + repeat(1)
    + repeat(2)
    + guest_lines(
        "[perf] summary repeats=2 prefill_tok_s_median=500.000 decode_tok_s_median=300.000 "
        "decode_tok_s_min=299.500 decode_tok_s_max=300.500",
        "[done] status=ok",
    )
)


def parse(data: bytes, profile: Profile | None = None) -> list[Event]:
    parser = EventParser(profile or reference_profile())
    text = clean(data)
    lines = text.split("\n")
    assert lines[-1] == ""
    events: list[Event] = []
    for i, line in enumerate(lines[:-1]):
        events.extend(parser.feed(line, float(i)))
    return events


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return parse(TRANSCRIPT)


def one(events: list[Event], kind: str, **filters: object) -> Event:
    found = [e for e in events if e.kind == kind and e.matches(**filters)]
    assert len(found) == 1, (kind, filters, found)
    return found[0]


def test_event_sequence(events: list[Event]) -> None:
    gen = ["gen_begin", "gen_end", "gen_prompt_ids", "gen_ids", "perf"]
    assert [e.kind for e in events] == [
        "loader", "loader", "boot", "cfg", "cpu", "cpu_step", "cpu_step", "kernel", "timer",
        "bench", "bench", "bench", "bench_done", "model", "tokenizer",
        *gen, *gen, "perf_summary", "done",
    ]  # fmt: skip


def test_firmware_and_boot(events: list[Event]) -> None:
    loading, starting = [e for e in events if e.kind == "loader"]
    assert loading.fields["action"] == "loading" and starting.fields["action"] == "starting"
    assert starting.fields["option"] == "Boot0001"
    assert starting.fields["description"] == "UEFI QEMU HARDDISK QM00001 "
    boot = one(events, "boot")
    assert boot.fields == {
        "name": "bm-ref-guest",
        "version": "0.1.0",
        "build": "3f2a9c1-20250101",
        "platform": "uefi",
        "fw_vendor": "EDK II",
        "fw_revision": 0x10000,
        "uefi": "2.70",
    }
    assert boot.raw_fields["fw_revision"] == "0x10000"
    assert boot.line.startswith("[boot] name=") and boot.time == 2.0


def test_cfg(events: list[Event]) -> None:
    f = one(events, "cfg").fields
    assert f["prompt"] == "Once upon a time"
    assert (f["steps"], f["seed"], f["repeats"], f["bench_runs"]) == (12, 42, 2, 5)
    assert f["temperature"] == 0.0 and f["topp"] == pytest.approx(0.9)
    assert f["bench"] is True and f["kernel"] == "auto" and f["slowdown_pct"] == 0.0


def test_cpu(events: list[Event]) -> None:
    cpu = one(events, "cpu")
    assert cpu.fields["vendor"] == "GenuineIntel"
    assert (cpu.fields["family"], cpu.fields["model"]) == (6, 94)
    for flag in ("sse2", "avx", "avx2", "fma", "xsave"):
        assert cpu.fields[flag] is True, flag
    assert cpu.fields["osxsave"] is False
    assert one(events, "cpu_step", step="cr4_osxsave").fields["ok"] is True
    xcr0 = one(events, "cpu_step", step="xcr0")
    assert xcr0.fields["xcr0"] == 7 and xcr0.fields["avx_state"] is True
    kernel = one(events, "kernel")
    assert kernel.fields == {"kernel": "avx2", "reason": "auto"}


def test_timer_and_bench(events: list[Event]) -> None:
    timer = one(events, "timer")
    assert timer.fields == {
        "source": "acpi_pm",
        "tsc_hz": 2112345678,
        "calib_ms": 50,
        "pm_port": 0x608,
    }
    assert timer.units["tsc_hz"] == "Hz"
    fib = one(events, "bench", name="fibonacci")
    assert fib.fields["result"] == "46368"  # results stay strings: sha256, "5-17", ints
    assert fib.fields["median_ns"] == 520 and fib.units["median_ns"] == "ns"
    assert fib.fields["ok"] is True
    assert one(events, "bench", name="sha256").fields["result"] == SHA
    assert one(events, "bench", name="fft").fields["result"] == "5-17"
    assert one(events, "bench_done").fields == {"modules": 3, "failed": 0}


def test_model_and_tokenizer(events: list[Event]) -> None:
    model = one(events, "model").fields
    assert model["dim"] == 64 and model["kv_heads"] == 4 and model["seq_len"] == 256
    assert model["shared_classifier"] is True and model["params"] == 263936
    assert one(events, "tokenizer").fields["max_token_len"] == 7


def test_perf(events: list[Event]) -> None:
    perf = one(events, "perf", repeat=2)
    assert perf.fields["decode_tok_s"] == 300.0 and perf.units["decode_tok_s"] == "tok/s"
    assert perf.raw_fields["decode_tok_s"] == "300.000"
    assert perf.fields["first_token_ms"] == 12.5 and perf.fields["decode_tokens"] == 12
    summary = one(events, "perf_summary").fields
    assert summary["repeats"] == 2 and summary["decode_tok_s_min"] == 299.5
    assert one(events, "done").fields == {"status": "ok"}


def test_generations(events: list[Event]) -> None:
    gens = generations(events)
    assert len(gens) == 2
    for k, gen in enumerate(gens, start=1):
        assert gen.text == (
            " there was a little girl named Lily. She went to the café.\nShe liked to play"
        )
        assert gen.tokens == 12
        assert gen.ids == [int(i) for i in IDS.split(",")]
        assert gen.prompt_ids == [1, 403, 2501, 263, 931]
        assert gen.begin is not None and gen.begin.fields["repeat"] == k
        assert gen.begin.fields["temperature"] == 0.0
    first_end = next(e for e in events if e.kind == "gen_end")
    assert first_end.fields["text"] == gens[0].text


def test_generation_without_ids_lines_yet() -> None:
    head = TRANSCRIPT.split(b"[gen] prompt_ids")[0]
    (gen,) = generations(parse(head))
    assert gen.tokens == 12 and gen.ids == [] and gen.prompt_ids == []


def test_repl_and_error_transcript() -> None:
    data = PROLOGUE + guest_lines(
        '[boot] name=bm-ref-guest version=0.1.0 build=x platform=host fw_vendor="-" '
        "fw_revision=- uefi=0.0",
        "[timer] source=clock tsc_hz=3000000000 calib_ms=100 pm_port=-",
        "[repl] ready",
        r'[repl] prompt="Tell me \"a\" story \\o/"',
        "[gen] begin repeat=1 prompt_tokens=9 steps=4 temperature=0.000 topp=0.900 seed=42",
        "Once",
        '[error] where=gen file=- reason=no_memory detail="KV cache: 12 MB"',
        "[gen] end tokens=1",
        '[error] where=cfg file=run.cfg reason=unknown_key detail="key \\"colour\\""',
        "[done] status=error",
    )
    events = [e for e in parse(data) if e.kind != "prompt"]  # repl_ready is also the prompt
    assert [e.kind for e in parse(data)].count("prompt") == 1
    assert [e.kind for e in events] == [
        "boot", "timer", "repl_ready", "repl_prompt", "gen_begin", "error", "gen_end",
        "error", "done",
    ]  # fmt: skip
    boot, timer = events[0], events[1]
    assert boot.fields["fw_revision"] is None and boot.fields["fw_vendor"] == "-"
    assert timer.fields["pm_port"] is None and timer.fields["source"] == "clock"
    assert events[3].fields["prompt"] == 'Tell me "a" story \\o/'
    # a marker line inside a generation stays an event and is not generated text
    assert events[6].fields["text"] == "Once"
    assert events[5].fields["detail"] == "KV cache: 12 MB"
    assert events[7].fields == {
        "where": "cfg",
        "file": "run.cfg",
        "reason": "unknown_key",
        "detail": 'key "colour"',
    }


def test_bad_value_keeps_the_raw_string() -> None:
    (event,) = reference_profile().parse("[timer] source=acpi_pm tsc_hz=fast calib_ms=1")
    assert event.fields["tsc_hz"] is None and event.raw_fields["tsc_hz"] == "fast"
    assert event.fields["calib_ms"] == 1


def test_convert() -> None:
    assert convert("int", "-12") == -12
    assert convert("hex", "0xFF") == 255 and convert("hex", "ff") == 255
    assert convert("bool", "0") is False and convert("bool", "yes") is True
    assert convert("ints", "1,2,3") == [1, 2, 3] and convert("ints", "") == []
    assert convert("float", "2.500") == 2.5
    assert convert("int", "-") is None and convert("str", "-") == "-"
    for type_name, raw in (("int", "1.5"), ("bool", "maybe"), ("hex", "0xZZ"), ("ints", "1,x")):
        with pytest.raises(ValueError):
            convert(type_name, raw)


def test_matches_values_and_predicates() -> None:
    event = Event("perf", {"repeat": 2, "decode_tok_s": 300.0}, "[perf] ...")
    assert event.matches(repeat=2)
    assert event.matches(decode_tok_s=lambda v: v > 100)
    assert not event.matches(repeat=3)
    assert not event.matches(missing=1)


def test_parse_kv_forms() -> None:
    line = r'[x] a=1 b="two words" c= d="q\"uote" e="back\\slash" f="unterminated'
    assert parse_kv(line) == {
        "a": "1",
        "b": "two words",
        "c": "",
        "d": 'q"uote',
        "e": "back\\slash",
        "f": "unterminated",
    }
    assert parse_kv('[x] p="a=b c=d" k=v') == {"p": "a=b c=d", "k": "v"}
    assert unquote("plain") == "plain"


def quote(value: str) -> str:
    if value and not re.search(r'[\s"\\]', value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


keys = st.from_regex(r"[a-z0-9_]{1,12}", fullmatch=True)
values = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from('"\\ '),
    max_size=30,
)


@given(st.dictionaries(keys, values, max_size=8))
def test_kv_round_trip(fields: dict[str, str]) -> None:
    line = "[tag] " + " ".join(f"{k}={quote(v)}" for k, v in fields.items())
    assert parse_kv(line) == fields

"""Profile tools: value mapping, partial markers, what suites read (the README table) and
`profile check`, which replays a captured log with no boot."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_baremetal.console.log import ConsoleLog
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.markers import check
from pytest_baremetal.markers.events import EventParser
from pytest_baremetal.markers.needs import Needs, markdown_table, read_suites
from pytest_baremetal.markers.profile import (
    load_profile,
    profile_from_dict,
    reference_profile,
)
from pytest_baremetal.safe_yaml import loads

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CHAT = ROOT / "tests" / "fixture_guest" / "chat.yaml"

CHAT_LOG = (
    b"\x1b[2J\x1b[01;01HBdsDxe: starting Boot0001 \"UEFI QEMU HARDDISK\"\r\n"
    b"[fixture] start mode=chat\r\r\n"
    b"llm-baremetal REPL v0.9.2 (build fx-20260105) firmware=EDK II\r\r\n"
    b"SGEMM kernel: SSE2 (sse2=1 avx=0 avx2=0 fma=0)\r\r\n"
    b"Ready.\r\r\n\r\r\nYou: Once upon a time\r\r\n"
    b"AI: the little dog\r\r\n[llmk][budget] prefill=4 decode=6 cap=256\r\r\nran to a tree\r\r\n"
    b"[stats] tokens=6 time_s=0 tok/s=inf\r\r\n\r\r\nYou: "
)


def test_rename_map_constants_defaults() -> None:
    profile = profile_from_dict({"events": {"kernel": {
        "pattern": r"^SGEMM kernel: (?P<printed>\S+)",
        "rename": {"printed": ["kernel", "reason"]},
        "map": {"kernel": {"AVX2+FMA": "avx2"}, "reason": {"AVX2+FMA": "auto"}},
        "constants": {"xsave": True}, "defaults": {"note": "none", "kernel": "never"},
        "fields": {"xsave": "bool"},
    }}}, "p.yaml")
    (event,) = profile.parse("SGEMM kernel: AVX2+FMA (sse2=1)")
    assert event.fields == {"kernel": "avx2", "reason": "auto", "note": "none", "xsave": True}
    (other,) = profile.parse("SGEMM kernel: NEON")
    assert other.fields["kernel"] == "NEON"  # unmapped values pass through
    assert profile.provides_field("kernel", "reason") and profile.provides_field("kernel", "note")
    assert not profile.provides_field("kernel", "printed")


@pytest.mark.parametrize(("spec", "key"), [
    ({"pattern": "^x", "rename": {"v": "w"}}, "events.a.rename.v"),
    ({"pattern": "^(?P<v>x)", "rename": {"v": []}}, "events.a.rename.v"),
    ({"pattern": "^(?P<v>x)", "map": {"w": {"a": "b"}}}, "events.a.map.w"),
    ({"pattern": "^x", "constants": {"v": [1]}}, "events.a.constants.v"),
    ({"pattern": "^x", "partial": "yes"}, "events.a.partial"),
])
def test_bad_value_mapping(spec: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        profile_from_dict({"events": {"a": spec}}, "p.yaml")
    assert info.value.key == key


@pytest.mark.parametrize(("data", "key"), [
    ({"interaction": {"mode": "chat"}}, "interaction.mode"),
    ({"interaction": {"mode": "repl"}}, "interaction.prompt"),
    ({"interaction": {"prompt": "^> $", "input_end": ""}}, "interaction.input_end"),
    ({"interaction": {"repl_when": {"mode": "repl"}}}, "interaction.prompt"),
])
def test_bad_interaction(data: object, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        profile_from_dict(data, "p.yaml")
    assert info.value.key == key


def test_generation_text_begin_group_drop_and_no_trailing_newline() -> None:
    parser = EventParser(load_profile(CHAT))
    lines = ["AI: the little dog", "[llmk][budget] prefill=4", "ran to a tree", "",
             "[stats] tokens=6 time_s=0 tok/s=12.5"]
    events = [e for line in lines for e in parser.feed(line)]
    end = events[-1]
    assert end.fields["text"] == "the little dog\nran to a tree"
    assert end.fields["decode_tok_s"] == 12.5 and end.units["decode_tok_s"] == "tok/s"


def test_readme_table_is_generated_from_the_suites() -> None:
    text = README.read_text()
    table = text.split("<!-- suite-needs:begin -->\n")[1].split("<!-- suite-needs:end -->")[0]
    assert table == markdown_table(ROOT / "suites"), (
        "README table is stale: run `python -m pytest_baremetal profile table` and paste it")
    tests = {(t.suite, t.name): t.needs for t in read_suites(ROOT / "suites")}
    assert tests[("test_avx.py", "test_avx2_and_fma_detected")].events["cpu"] == [
        "avx", "avx2", "fma", "xsave"]
    assert tests[("test_boot.py", "test_machine_powers_off_by_itself")].interaction == "script"
    sampled = tests[("test_generation.py", "test_sampled_tokens_match_reference")]
    assert "temperature" in sampled.config_keys  # read through bm_config(**SAMPLED)


def test_readme_profile_example_loads() -> None:
    text = README.read_text().split("## Testing your own build")[1]
    block = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert block is not None
    profile = profile_from_dict(loads(block.group(1), "README"), "README")
    assert profile.interaction.mode == "repl" and profile.provides("prompt")
    (kernel,) = [e for e in profile.parse("SGEMM kernel: AVX2+FMA") if e.kind == "kernel"]
    assert kernel.fields == {"kernel": "avx2", "reason": "auto"}


def test_needs_skip_reasons() -> None:
    chat = load_profile(CHAT)
    assert Needs({"cpu": ["avx2"]}).skip_reason(chat) is None
    assert "event cpu has no field xsave" in str(Needs({"cpu": ["xsave"]}).skip_reason(chat))
    assert "has no event bench" in str(Needs({"bench": []}).skip_reason(chat))
    assert "interactive" in str(Needs(interaction="script").skip_reason(chat))
    assert Needs(interaction="repl").skip_reason(chat) is None
    ref = reference_profile()
    assert Needs(interaction="script").skip_reason(ref, {"mode": "script"}) is None
    assert Needs(interaction="script").skip_reason(ref, {"mode": "repl"}) is not None
    assert Needs(interaction="repl").skip_reason(ref) is None  # mode=repl makes it so
    assert "no configuration key bench" in str(Needs(config_keys=["bench"]).skip_reason(chat))


def test_profile_check_on_a_raw_log(tmp_path: Path) -> None:
    raw = tmp_path / "chat.console.log"
    with ConsoleLog(raw) as log:  # the plugin's own timestamped format
        log.append(CHAT_LOG[:100], log.t0 + 0.5)
        log.append(CHAT_LOG[100:], log.t0 + 1.0)
    out = io.StringIO()
    assert check.main(["check", str(CHAT), str(raw), "--suites", str(ROOT / "suites")],
                      out) == 0
    text = out.getvalue()
    assert "interaction repl" in text and "last line incomplete: 'You: '" in text
    assert re.search(r"kernel\s+kernel=portable reason=no_avx2", text), text
    assert "decode_tok_s=None (printed 'inf')" in text
    assert "#1: tokens=6, text 'the little dog\\nran to a tree'" in text
    assert "run over: yes, idle at the prompt 'You: '" in text
    assert "run  test_boot.py::test_banner_names_the_build" in text
    assert "skip test_boot.py::test_machine_powers_off_by_itself: the build is interactive" in text


def test_profile_check_cli_on_a_plain_capture(tmp_path: Path) -> None:
    """The installed command's path: `python -m pytest_baremetal profile check`."""
    plain = tmp_path / "capture.txt"
    plain.write_bytes(b"[boot] name=g version=1.0.0\r\n[error] where=fs reason=missing\r\n"
                      b"[done] status=error\r\n[perf] repeat=1 decode_tok_s=12")
    run = subprocess.run([sys.executable, "-m", "pytest_baremetal", "profile", "check",
                          "reference", str(plain), "--suites", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "death strings seen" in run.stdout and "[error] where=fs" in run.stdout
    assert "run over: yes, at '[done] status=error'" in run.stdout
    assert "perf " not in run.stdout.split("events")[1].split("generations")[0]  # cut line
    bad = subprocess.run([sys.executable, "-m", "pytest_baremetal", "profile", "check",
                          "nope", str(plain)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert bad.returncode == 2 and "no profile named 'nope'" in bad.stderr

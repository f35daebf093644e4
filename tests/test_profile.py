"""Marker profiles: the reference profile covers MARKERS.md; bad profiles say where and why."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_baremetal.errors import ConfigError
from pytest_baremetal.markers.events import TYPE_NAMES
from pytest_baremetal.markers.profile import (
    load_profile,
    profile_from_dict,
    reference_profile,
    resolve_profile,
)

MARKERS = Path(__file__).resolve().parent.parent / "guest" / "MARKERS.md"
KINDS = [
    "boot", "cfg", "cpu", "cpu_step", "kernel", "timer", "bench", "bench_done", "model",
    "tokenizer", "gen_begin", "gen_end", "gen_ids", "gen_prompt_ids", "perf", "perf_summary",
    "repl_ready", "repl_prompt", "error", "done", "download", "loader",
    "net_info", "net_connect", "net_http", "net_done", "net_fallback", "prompt",
]  # fmt: skip
SAMPLES = {"n": "7", "r": "1.500", "0xHEX": "0x1f", "id,id,...": "1,2,3", "k": "2"}


def markers_lines() -> list[str]:
    """Every machine line of MARKERS.md's table, placeholders filled with sample values."""
    table = MARKERS.read_text().split("## Lines, in the order they appear")[1].split("\n## ")[0]
    lines = []
    for row in table.splitlines():
        m = re.match(r"\| `(\[.*?)` \|", row)
        if m is None:
            continue
        template = m.group(1).replace("\\|", "|")

        def fill(p: re.Match[str]) -> str:
            inner = p.group(1)
            first = inner.split("|")[0]
            return SAMPLES.get(first, SAMPLES.get(inner, first))

        lines.append(re.sub(r"<([^>]*)>", fill, template))
    return lines


def test_markers_table_is_read() -> None:
    lines = markers_lines()
    assert len(lines) >= 20
    assert any(line.startswith("[repl] ready") for line in lines)


@pytest.mark.parametrize("line", markers_lines())
def test_every_markers_line_is_one_typed_event(line: str) -> None:
    profile = reference_profile()
    # the REPL's ready line is also the interaction's prompt (kind "prompt")
    events = [e for e in profile.parse(line) if e.kind != "prompt"]
    assert len(events) == 1, (line, [e.kind for e in events])
    (event,) = events
    for name, type_name in profile.spec(event.kind).fields.items():
        if name in event.raw_fields and type_name != "str":
            assert event.fields[name] is not None, f"{event.kind}.{name} from {line!r}"
    spec = profile.spec(event.kind)
    assert set(event.units) <= set(spec.fields)
    if spec.kv:  # every key the guest prints has a declared type
        assert set(event.raw_fields) <= set(spec.fields), line


def test_reference_kinds() -> None:
    profile = reference_profile()
    assert profile.name == "reference"
    for kind in KINDS:
        assert profile.provides(kind), kind
    assert not profile.provides("gpu")
    assert set(profile.kinds) == set(KINDS)


@pytest.mark.parametrize(
    ("line", "dies"),
    [
        ('[error] where=cfg file=run.cfg reason=syntax detail="x"', True),
        ("!!!! X64 Exception Type - 0D(#GP - General Protection)  CPU Apic ID - 0 !!!!", True),
        ("ASSERT [BdsDxe] /build/edk2/Bds.c(123): Status == 0", True),
        ("Kernel panic - not syncing: VFS", True),
        ("panic: out of memory", True),
        ("thread 'main' panicked at src/main.rs:3", True),
        ("Tom began to panic. He ran home.", False),  # generated stories are not deaths
        ("[errors] none", False),
        ("[done] status=error", False),
    ],
)
def test_death_patterns(line: str, dies: bool) -> None:
    assert (reference_profile().death_match(line) is not None) is dies


def test_shipped_profile_by_name_and_unknown_name() -> None:
    assert resolve_profile("reference").name == "reference"
    with pytest.raises(ConfigError, match=r"no profile named 'nope'.*use one of .*reference"):
        resolve_profile("nope")


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "events:\n"
        "  temp:\n"
        "    patterns: ['^T=(?P<c>[\\d.]+)C$', '^temp (?P<c>[\\d.]+)$']\n"
        "    fields: {c: float}\n"
        "    units: {c: degC}\n"
        "  any_t: '^T'\n"
        "death: 'FATAL'\n"
    )
    profile = load_profile(path)
    assert profile.name == "mine" and profile.source == str(path)
    (event,) = profile.parse("temp 21.5")
    assert event.fields == {"c": 21.5} and event.units == {"c": "degC"}
    # a line may be several kinds: all are reported, in profile order
    assert [e.kind for e in profile.parse("T=3C")] == ["temp", "any_t"]
    assert profile.death_match("xx FATAL") is not None


def test_type_error_message_names_file_key_and_choices() -> None:
    data = {"events": {"cpu": {"pattern": "(?P<avx2>[01])", "fields": {"avx2": "boolean"}}}}
    with pytest.raises(ConfigError) as info:
        profile_from_dict(data, "profiles/x.yaml")
    assert str(info.value) == (
        "profiles/x.yaml: events.cpu.fields.avx2: type 'boolean' unknown (did you mean "
        "'bool'?), use one of int, float, bool, str, hex, ints"
    )
    assert info.value.file == "profiles/x.yaml" and info.value.value == "boolean"
    assert info.value.allowed == TYPE_NAMES


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"event": {}}, "event", "unknown key 'event' (did you mean 'events'?), use one of "
         "name, description, config, interaction"),
        ({"events": {"a": {"pattern": "x", "unit": {}}}}, "events.a.unit",
         "unknown key 'unit' (did you mean 'units'?)"),
        ({"interaction": {"mode": "rpl"}}, "interaction.mode",
         "invalid value 'rpl' (did you mean 'repl'?), use one of script, repl"),
        ({"reference": {"encoder": 5}}, "reference.encoder", "invalid value 5, use one of bpe"),
        ({"events": {"a": {"pattern": "x", "partial": 1}}}, "events.a.partial",
         "expected true or false, got int 1"),
        ({"events": {"a": {"pattern": "(?P<v>x)", "fields": {"v": ["int"] * 500}}}},
         "events.a.fields.v", "characters) unknown, use one of int"),
        ({"events": {"a": {"pattern": "(?P<v>x)", "defaults": {"v": [1]}}}},
         "events.a.defaults.v", "must be a single value (text or a number), got list [1]"),
        ({"events": {"a": {"pattern": "x", "field": {}}}}, "events.a.field", "unknown key"),
        ({"events": {"a": {"pattern": "(x"}}}, "events.a.pattern", "bad regular expression"),
        ({"events": {"a": {"patterns": ["x", "[y"]}}}, "events.a.patterns[1]", "bad regular"),
        ({"events": {"a": {"patterns": []}}}, "events.a.patterns", "non-empty list"),
        ({"events": {"a": {"pattern": "x", "patterns": ["x"]}}}, "events.a", "exactly one"),
        ({"events": {"a": {"fields": {}}}}, "events.a", "exactly one"),
        (
            {"events": {"a": {"pattern": "(?P<v>x)", "fields": {"w": "int"}}}},
            "events.a.fields.w",
            "not captured by any named group",
        ),
        ({"events": {"a": {"pattern": "x", "units": {"v": "ms"}}}}, "events.a.units.v", "unit"),
        ({"events": {"a": {"pattern": "x", "kv": "yes"}}}, "events.a.kv", "true or false"),
        ({"events": {"Bad-Kind": "x"}}, "events.Bad-Kind", "lowercase"),
        ({"events": {"done": "x"}, "done": "y"}, "done", "defined twice"),
        ({"death": {"a": 1}}, "death", "list"),
        ({"death": ["ok", "(bad"]}, "death[1]", "bad regular expression"),
        ({"generation": {"begin": "b"}}, "generation.end", "missing"),
        ({"generation": {"begin": "b", "end": "e", "text": "t"}}, "generation.text", "unknown"),
        ({"events": ["a"]}, "events", "expected a mapping (key: value), got list ['a']"),
        ({"events": list(range(5000))}, "events", "... (28890 characters)"),  # cut short
        ({"name": 3}, "name", "expected a string, got int 3"),
        ({"name": None}, "name", "expected a string, got nothing"),
    ],
)
def test_invalid_profiles(data: object, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        profile_from_dict(data, "p.yaml")
    assert info.value.key == key
    assert str(info.value).startswith(f"p.yaml: {key}: ")
    assert words in str(info.value)


def test_kv_fields_need_no_named_group() -> None:
    profile = profile_from_dict(
        {"events": {"a": {"pattern": "^A ", "kv": True, "fields": {"n": "int"}}}}, "p.yaml"
    )
    (event,) = profile.parse("A n=4 s=x")
    assert event.fields == {"n": 4, "s": "x"}


def test_generation_defaults_types() -> None:
    profile = profile_from_dict(
        {
            "generation": {
                "begin": "^<gen>",
                "end": r"^</gen (?P<tokens>\d+)>",
                "ids": r"^ids (?P<ids>[\d,]+)",
            }
        },
        "p.yaml",
    )
    assert profile.parse("</gen 3>")[0].fields == {"tokens": 3}
    assert profile.parse("ids 4,5")[0].fields == {"ids": [4, 5]}
    assert not profile.provides("gen_prompt_ids")


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load_profile(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("events: {a: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: YAML syntax error"):
        load_profile(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(ConfigError,
                       match=r"scalar.yaml: \(top level\): expected a mapping \(key: value\)"):
        load_profile(scalar)


def test_unknown_kind_lookup() -> None:
    with pytest.raises(ConfigError, match=r"events\.gpu: no such event kind"):
        reference_profile().spec("gpu")


def test_config_section() -> None:
    profile = reference_profile()
    assert profile.config_file == "run.cfg"
    assert {"mode", "prompt", "steps", "kernel", "shutdown"} <= set(profile.config_keys)
    bare = profile_from_dict({}, "p.yaml")
    assert bare.config_file is None and bare.config_keys == ()
    with pytest.raises(ConfigError, match=r"^p\.yaml: config\.path: unknown key"):
        profile_from_dict({"config": {"path": "x"}}, "p.yaml")
    with pytest.raises(ConfigError, match=r"^p\.yaml: config\.keys: must be a list"):
        profile_from_dict({"config": {"keys": "mode"}}, "p.yaml")


def test_config_error_forms() -> None:
    plain = ConfigError("--bm-efi and --bm-image both given")
    assert str(plain) == "--bm-efi and --bm-image both given" and plain.file == ""
    full = ConfigError("boards/x.yaml", "cpu", "invalid value 'k8'", value="k8", allowed=["max"])
    assert str(full) == "boards/x.yaml: cpu: invalid value 'k8', use one of max"
    assert (full.file, full.key, full.value) == ("boards/x.yaml", "cpu", "k8")
    assert str(ConfigError("b.yaml", "", "not a mapping")) == "b.yaml: not a mapping"

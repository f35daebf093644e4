"""Marker profiles: a guest's console vocabulary (YAML) compiled into typed event parsers.

See README "Testing your own build: a marker profile". ``config: {file, keys}`` names the
guest's configuration file and its keys (None/empty: the guest takes none). Besides
``events``, these sections define events of fixed kinds: ``done`` (kind ``done``), ``loader``
(kind ``loader``: the firmware reached the boot loader), ``generation`` (``begin``/``end``/
``ids``/``prompt_ids`` -> kinds ``gen_begin``/``gen_end``/``gen_ids``/``gen_prompt_ids``, and
``drop``: lines kept out of the generated text) and ``interaction.prompt`` (kind ``prompt``,
matched on the incomplete last line too). Each value there is a regex string or an event
mapping like those under ``events``.

An event mapping may turn what the build prints into what the suites read: ``rename``
(printed name -> field name, or a list of names to copy one value into several fields),
``map`` (per field, printed value -> value), ``constants`` and ``defaults`` (per field), and
``partial: true`` to match the line before its end arrives (prompts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from pytest_baremetal import safe_yaml
from pytest_baremetal import validate as v
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.markers.events import (
    GEN_BEGIN,
    GEN_END,
    GEN_IDS,
    GEN_PROMPT_IDS,
    TYPE_NAMES,
    Event,
    convert,
    parse_kv,
)
from pytest_baremetal.markers.patterns import Pattern, compile_pattern

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
_TOP_KEYS = (
    "name", "description", "config", "interaction", "events", "death", "done", "loader",
    "generation", "reference",
)  # fmt: skip
_ENCODERS = ("bpe", "greedy")  # reference.encoder: how the build encodes prompts
_CONFIG_KEYS = ("file", "keys")
_EVENT_KEYS = ("pattern", "patterns", "fields", "units", "kv", "description", "partial",
               "rename", "map", "constants", "defaults")
_INTERACTION_KEYS = ("mode", "prompt", "input_end", "quit", "repl_when")
_MODES = ("script", "repl")
PROMPT = "prompt"
_GENERATION = {"begin": GEN_BEGIN, "end": GEN_END, "ids": GEN_IDS, "prompt_ids": GEN_PROMPT_IDS}
_GENERATION_KEYS = (*_GENERATION, "drop")
#: fields every event of a kind carries without the profile naming them
_IMPLIED_FIELDS = {GEN_END: ("text",)}
_GENERATION_TYPES = {
    "end": {"tokens": "int"},
    "ids": {"ids": "ints"},
    "prompt_ids": {"prompt_ids": "ints"},
}
_KIND = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class EventSpec:
    """How one event kind is recognised, renamed, mapped and typed."""

    kind: str
    patterns: tuple[Pattern, ...]
    fields: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    kv: bool = False
    partial: bool = False
    rename: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    value_map: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)

    @property
    def known_fields(self) -> frozenset[str]:
        """Every field an event of this kind may carry, as far as the profile says."""
        groups = {name for p in self.patterns for name in p.groupindex}
        renamed = {new for old, news in self.rename.items() for new in news}
        names = (set(self.fields) | groups | renamed | set(self.constants) | set(self.defaults)
                 | set(_IMPLIED_FIELDS.get(self.kind, ())))
        return frozenset(names - set(self.rename))

    def match(self, line: str, time: float = 0.0) -> Event | None:
        """The event this line is, or None."""
        for pattern in self.patterns:
            m = pattern.search(line)
            if m is not None:
                break
        else:
            return None
        raw = parse_kv(line) if self.kv else {}
        raw.update({k: v for k, v in m.groupdict().items() if v is not None})
        if self.rename:
            for old, news in self.rename.items():
                if old in raw:
                    value = raw.pop(old)
                    for new in news:
                        raw[new] = value
        for name, table in self.value_map.items():
            if name in raw and raw[name] in table:
                raw[name] = table[raw[name]]
        for name, value in self.defaults.items():
            raw.setdefault(name, value)
        raw.update(self.constants)
        typed: dict[str, object] = {}
        for name, value in raw.items():
            try:
                typed[name] = convert(self.fields.get(name, "str"), value)
            except ValueError:
                typed[name] = None  # the raw string stays in raw_fields
        return Event(self.kind, typed, line, time, self.units, raw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Interaction:
    """How the build is driven: ``script`` runs and says done; ``repl`` waits at a prompt.

    ``repl_when`` holds guest-configuration values that make a script build interactive
    (the reference guest's ``mode: repl``). ``input_end`` ends every line sent.
    """

    mode: Literal["script", "repl"] = "script"
    input_end: str = "\r"
    quit: str | None = None
    repl_when: Mapping[str, str] = field(default_factory=dict)

    def is_repl(self, config: Mapping[str, object]) -> bool:
        if self.mode == "repl":
            return True
        return bool(self.repl_when) and all(
            str(config.get(k)) == v for k, v in self.repl_when.items())


@dataclass(frozen=True)
class Profile:
    """A compiled marker profile."""

    name: str
    source: str
    specs: tuple[EventSpec, ...]
    death: tuple[Pattern, ...] = ()
    description: str = ""
    config_file: str | None = None
    config_keys: tuple[str, ...] = ()
    interaction: Interaction = field(default_factory=Interaction)
    #: lines inside a generation that are not part of its text (build diagnostics)
    answer_drop: tuple[Pattern, ...] = ()
    #: how the build encodes prompts, for the host reference (``reference: {encoder: ...}``)
    encoder: str = "bpe"

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(spec.kind for spec in self.specs)

    def provides(self, kind: str) -> bool:
        """Whether this profile defines events of ``kind`` (suites skip what it lacks)."""
        return any(spec.kind == kind for spec in self.specs)

    def provides_field(self, kind: str, name: str) -> bool:
        """Whether events of ``kind`` carry field ``name`` (declared, captured or set)."""
        return any(spec.kind == kind and name in spec.known_fields for spec in self.specs)

    @property
    def partial_specs(self) -> tuple[EventSpec, ...]:
        """Specs also tried on the incomplete last line (prompts)."""
        return tuple(spec for spec in self.specs if spec.partial)

    def spec(self, kind: str) -> EventSpec:
        for spec in self.specs:
            if spec.kind == kind:
                return spec
        raise ConfigError(self.source, f"events.{kind}",
                          f"no such event kind{v.suggest(kind, self.kinds)}", value=kind,
                          allowed=self.kinds)

    def parse(self, line: str, time: float = 0.0, skip: frozenset[str] = frozenset()
              ) -> list[Event]:
        """Every event this line is (usually zero or one), in profile order; kinds in
        ``skip`` were already matched on the incomplete line and are not matched again."""
        width, buckets, rest = self._index
        candidates = buckets.get(line[:width], rest)
        return [e for spec in candidates
                if spec.kind not in skip and (e := spec.match(line, time)) is not None]

    @cached_property
    def _index(self) -> tuple[int, dict[str, tuple[EventSpec, ...]], tuple[EventSpec, ...]]:
        """Specs by the first characters every line they match starts with (most marker
        patterns are ``^\\[kind\\] ...``), so a line is tried against a few, not all."""
        starts: list[list[str] | None] = []
        for spec in self.specs:
            prefixes = [p.prefix if p.anchored else "" for p in spec.patterns]
            starts.append(prefixes if all(prefixes) else None)
        width = min((len(p) for s in starts if s for p in s), default=0)
        if width == 0:
            return 0, {}, self.specs
        rest = tuple(spec for spec, s in zip(self.specs, starts, strict=True) if s is None)
        keys = {p[:width] for s in starts if s for p in s}
        buckets = {key: tuple(spec for spec, s in zip(self.specs, starts, strict=True)
                              if s is None or any(p[:width] == key for p in s))
                   for key in keys}
        return width, buckets, rest

    def parse_partial(self, line: str, time: float, skip: frozenset[str]) -> list[Event]:
        """Events of the partial specs found in an incomplete line (kinds in ``skip`` left)."""
        return [e for spec in self.specs
                if spec.partial and spec.kind not in skip
                and (e := spec.match(line, time)) is not None]

    def dropped_from_answer(self, line: str) -> bool:
        return any(p.search(line) for p in self.answer_drop)

    def death_match(self, line: str) -> Pattern | None:
        """The first death pattern found in ``line``, or None."""
        for pattern in self.death:
            if pattern.search(line):
                return pattern
        return None


def load_profile(path: str | Path) -> Profile:
    """Load and validate a profile file."""
    source = str(path)
    data = safe_yaml.load_file(Path(path), "the profile")
    return profile_from_dict(data, source, default_name=Path(path).stem)


def resolve_profile(name_or_path: str | Path) -> Profile:
    """A profile file path, or the name of a profile shipped with the plugin."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_profile(path)
    shipped = PROFILES_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return load_profile(shipped)
    names = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
    raise ConfigError(
        "--bm-profile",
        "profile",
        f"no profile named {str(name_or_path)!r}{v.suggest(name_or_path, names)}",
        value=name_or_path,
        allowed=names,
    )


def reference_profile() -> Profile:
    """The profile of the reference guest (guest/MARKERS.md)."""
    return load_profile(PROFILES_DIR / "reference.yaml")


def profile_from_dict(data: object, source: str, default_name: str = "profile") -> Profile:
    """Validate and compile a parsed profile document; ConfigError names file and key."""
    top = _mapping(data, source, "")
    _known_keys(top, _TOP_KEYS, source, "")
    specs: list[EventSpec] = []
    events = _mapping(top.get("events", {}), source, "events")
    for kind, body in events.items():
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise ConfigError(
                source,
                f"events.{kind}",
                "event kinds are lowercase names like cpu or perf_summary",
                value=kind,
            )
        specs.append(_event_spec(kind, body, source, f"events.{kind}", {}))
    for section in ("done", "loader"):
        if section in top:
            specs.append(_event_spec(section, top[section], source, section, {}))
    interaction = _interaction(top, source, specs)
    drop: tuple[Pattern, ...] = ()
    if "generation" in top:
        gen = _mapping(top["generation"], source, "generation")
        _known_keys(gen, _GENERATION_KEYS, source, "generation")
        raw_drop = gen.get("drop", [])
        if isinstance(raw_drop, str):
            raw_drop = [raw_drop]
        if not isinstance(raw_drop, list):
            raise ConfigError(source, "generation.drop", "must be a list of regular "
                              "expressions", value=raw_drop)
        drop = tuple(compile_pattern(p, source, f"generation.drop[{i}]")
                     for i, p in enumerate(raw_drop))
        for required in ("begin", "end"):
            if required not in gen:
                raise ConfigError(source, f"generation.{required}", "missing")
        for key, kind in _GENERATION.items():
            if key in gen:
                defaults = _GENERATION_TYPES.get(key, {})
                specs.append(_event_spec(kind, gen[key], source, f"generation.{key}", defaults))
    seen: set[str] = set()
    for spec in specs:
        if spec.kind in seen:
            raise ConfigError(source, spec.kind, "event kind defined twice", value=spec.kind)
        seen.add(spec.kind)
    death = top.get("death", [])
    if isinstance(death, str):
        death = [death]
    if not isinstance(death, list):
        raise ConfigError(source, "death", "must be a list of regular expressions", value=death)
    config = _mapping(top.get("config", {}), source, "config")
    _known_keys(config, _CONFIG_KEYS, source, "config")
    config_file = _string(config["file"], source, "config.file") if "file" in config else None
    keys = config.get("keys", [])
    if not isinstance(keys, list):
        raise ConfigError(source, "config.keys", "must be a list of key names", value=keys)
    return Profile(
        name=_string(top.get("name", default_name), source, "name"),
        source=source,
        specs=tuple(specs),
        death=tuple(_regex(p, source, f"death[{i}]") for i, p in enumerate(death)),
        description=_string(top.get("description", ""), source, "description"),
        config_file=config_file,
        config_keys=tuple(_string(k, source, f"config.keys[{i}]") for i, k in enumerate(keys)),
        interaction=interaction,
        answer_drop=drop,
        encoder=_encoder(top, source),
    )


def _encoder(top: Mapping[str, object], source: str) -> str:
    section = _mapping(top.get("reference", {}), source, "reference")
    _known_keys(section, ("encoder",), source, "reference")
    return v.choice(section.get("encoder", "bpe"), _ENCODERS, _where(source),
                    "reference.encoder")


def _interaction(top: Mapping[str, object], source: str, specs: list[EventSpec]
                 ) -> Interaction:
    """The ``interaction`` section; its prompt becomes the partial event kind ``prompt``."""
    section = _mapping(top.get("interaction", {}), source, "interaction")
    _known_keys(section, _INTERACTION_KEYS, source, "interaction")
    mode = v.choice(section.get("mode", "script"), _MODES, _where(source), "interaction.mode")
    if "prompt" in section:
        specs.append(_event_spec(PROMPT, section["prompt"], source, "interaction.prompt", {},
                                 partial=True))
    elif mode == "repl":
        raise ConfigError(source, "interaction.prompt", "a repl build needs the pattern of "
                          "its prompt (e.g. '^You: $'), matched on the incomplete last line")
    input_end = section.get("input_end", "\r")
    if not isinstance(input_end, str) or not input_end:
        raise ConfigError(source, "interaction.input_end", "must be the text that ends a "
                          "line sent to the build, e.g. \"\\r\"", value=input_end)
    quit_line = section.get("quit")
    if quit_line is not None:
        quit_line = _string(quit_line, source, "interaction.quit")
    repl_when = _mapping(section.get("repl_when", {}), source, "interaction.repl_when")
    if repl_when and "prompt" not in section:
        raise ConfigError(source, "interaction.prompt", "repl_when needs the prompt pattern")
    return Interaction(
        mode="repl" if mode == "repl" else "script",
        input_end=input_end,
        quit=quit_line,
        repl_when={k: _scalar(v, source, f"interaction.repl_when.{k}")
                   for k, v in repl_when.items()},
    )


def _event_spec(
    kind: str, body: object, source: str, key: str, default_types: Mapping[str, str],
    *, partial: bool = False,
) -> EventSpec:
    if isinstance(body, str):
        body = {"pattern": body}
    spec = _mapping(body, source, key)
    _known_keys(spec, _EVENT_KEYS, source, key)
    if ("pattern" in spec) == ("patterns" in spec):
        raise ConfigError(source, key, "give exactly one of 'pattern' or 'patterns'")
    patterns: tuple[Pattern, ...]
    if "pattern" in spec:
        patterns = (_regex(spec["pattern"], source, f"{key}.pattern"),)
    else:
        raw = spec["patterns"]
        if not isinstance(raw, list) or not raw:
            raise ConfigError(source, f"{key}.patterns", "must be a non-empty list", value=raw)
        patterns = tuple(_regex(p, source, f"{key}.patterns[{i}]") for i, p in enumerate(raw))
    kv = v.boolean(spec.get("kv", False), _where(source), f"{key}.kv")
    is_partial = v.boolean(spec.get("partial", partial), _where(source), f"{key}.partial")
    groups = {name for p in patterns for name in p.groupindex}
    rename = _rename(spec.get("rename", {}), source, f"{key}.rename")
    if not kv:
        for old in rename:
            if old not in groups:
                raise ConfigError(source, f"{key}.rename.{old}", "not captured by any named "
                                  f"group (?P<{old}>...) of the pattern; or set kv: true",
                                  value=old)
    groups = (groups - set(rename)) | {new for news in rename.values() for new in news}
    constants = {str(k): _scalar(v, source, f"{key}.constants.{k}")
                 for k, v in _mapping(spec.get("constants", {}), source,
                                      f"{key}.constants").items()}
    defaults = {str(k): _scalar(v, source, f"{key}.defaults.{k}")
                for k, v in _mapping(spec.get("defaults", {}), source,
                                     f"{key}.defaults").items()}
    value_map: dict[str, dict[str, str]] = {}
    for name, table in _mapping(spec.get("map", {}), source, f"{key}.map").items():
        where = f"{key}.map.{name}"
        if not kv and name not in groups:
            raise ConfigError(source, where, "a value map for a field the pattern does not "
                              "capture (map applies after rename)", value=name)
        value_map[name] = {str(k): _scalar(v, source, f"{where}.{k}")
                           for k, v in _mapping(table, source, where).items()}
    groups |= set(constants) | set(defaults)
    fields = {k: v for k, v in default_types.items() if k in groups}
    for name, type_name in _mapping(spec.get("fields", {}), source, f"{key}.fields").items():
        where = f"{key}.fields.{name}"
        if type_name not in TYPE_NAMES:
            hint = v.suggest(type_name, TYPE_NAMES) if isinstance(type_name, str) else ""
            raise ConfigError(source, where, f"type {v.shorten(type_name)} unknown{hint}",
                              value=type_name, allowed=TYPE_NAMES)
        if not kv and name not in groups:
            raise ConfigError(
                source,
                where,
                f"not captured by any named group (?P<{name}>...) of the pattern; or set kv: true",
                value=name,
            )
        fields[str(name)] = str(type_name)
    units: dict[str, str] = {}
    for name, unit in _mapping(spec.get("units", {}), source, f"{key}.units").items():
        where = f"{key}.units.{name}"
        if not kv and name not in groups:
            raise ConfigError(
                source, where, "a unit for a field the pattern does not capture", value=name
            )
        units[str(name)] = _string(unit, source, where)
    return EventSpec(kind, patterns, fields, units, kv, is_partial, rename, value_map,
                     constants, defaults)


def _rename(value: object, source: str, key: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for old, new in _mapping(value, source, key).items():
        names = new if isinstance(new, list) else [new]
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(source, f"{key}.{old}", "must be a field name or a list of "
                              "field names", value=new)
        out[old] = tuple(str(n) for n in names)
    return out


def _scalar(value: object, source: str, key: str) -> str:
    """A YAML scalar as the raw text a guest would print (``true`` -> ``1``)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ConfigError(source, key, f"must be a single value (text or a number), got "
                      f"{v.type_name(value)} {v.shorten(value)}", value=value)


def _where(source: str) -> v.Where:
    return v.Where(source, Path(source).parent)


def _mapping(value: object, source: str, key: str) -> dict[str, object]:
    """A mapping section (absent or empty: ``{}``)."""
    if value is None:
        return {}
    found = v.mapping(value, _where(source), key or "(top level)", "a mapping (key: value)")
    return {str(k): item for k, item in found.items()}


def _known_keys(
    mapping: Mapping[str, object], allowed: Sequence[str], source: str, key: str
) -> None:
    v.known_keys(mapping, allowed, _where(source), f"{key}." if key else "")


def _string(value: object, source: str, key: str) -> str:
    if value is None:
        raise _where(source).error(key, "expected a string, got nothing")
    return v.string(value, _where(source), key)


def _regex(value: object, source: str, key: str) -> Pattern:
    return compile_pattern(value, source, key)

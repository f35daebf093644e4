"""Marker profiles: a guest's console vocabulary (YAML) compiled into typed event parsers.

See docs/internals.md ("Marker profile contract"). ``config: {file, keys}`` names the
guest's configuration file and its keys (None/empty: the guest takes none). Besides
``events``, three sections
define events of fixed kinds: ``done`` (kind ``done``), ``loader`` (kind ``loader``: the
firmware reached the boot loader) and ``generation`` (``begin``/``end``/``ids``/
``prompt_ids`` -> kinds ``gen_begin``/``gen_end``/``gen_ids``/``gen_prompt_ids``). Each
value there is a regex string or an event mapping like those under ``events``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
_TOP_KEYS = (
    "name", "description", "config", "events", "death", "done", "loader", "generation"
)  # fmt: skip
_CONFIG_KEYS = ("file", "keys")
_EVENT_KEYS = ("pattern", "patterns", "fields", "units", "kv", "description")
_GENERATION = {"begin": GEN_BEGIN, "end": GEN_END, "ids": GEN_IDS, "prompt_ids": GEN_PROMPT_IDS}
_GENERATION_TYPES = {
    "end": {"tokens": "int"},
    "ids": {"ids": "ints"},
    "prompt_ids": {"prompt_ids": "ints"},
}
_KIND = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class EventSpec:
    """How one event kind is recognised and typed."""

    kind: str
    patterns: tuple[re.Pattern[str], ...]
    fields: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    kv: bool = False

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
        typed: dict[str, object] = {}
        for name, value in raw.items():
            try:
                typed[name] = convert(self.fields.get(name, "str"), value)
            except ValueError:
                typed[name] = None  # the raw string stays in raw_fields
        return Event(self.kind, typed, line, time, dict(self.units), raw)


@dataclass(frozen=True)
class Profile:
    """A compiled marker profile."""

    name: str
    source: str
    specs: tuple[EventSpec, ...]
    death: tuple[re.Pattern[str], ...] = ()
    description: str = ""
    config_file: str | None = None
    config_keys: tuple[str, ...] = ()

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(spec.kind for spec in self.specs)

    def provides(self, kind: str) -> bool:
        """Whether this profile defines events of ``kind`` (suites skip what it lacks)."""
        return any(spec.kind == kind for spec in self.specs)

    def spec(self, kind: str) -> EventSpec:
        for spec in self.specs:
            if spec.kind == kind:
                return spec
        raise ConfigError(
            self.source, f"events.{kind}", "no such event kind", value=kind, allowed=self.kinds
        )

    def parse(self, line: str, time: float = 0.0) -> list[Event]:
        """Every event this line is (usually zero or one), in profile order."""
        return [e for spec in self.specs if (e := spec.match(line, time)) is not None]

    def death_match(self, line: str) -> re.Pattern[str] | None:
        """The first death pattern found in ``line``, or None."""
        for pattern in self.death:
            if pattern.search(line):
                return pattern
        return None


def load_profile(path: str | Path) -> Profile:
    """Load and validate a profile file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read the profile: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"invalid YAML: {exc}") from exc
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
        f"no profile named {str(name_or_path)!r}",
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
    if "generation" in top:
        gen = _mapping(top["generation"], source, "generation")
        _known_keys(gen, tuple(_GENERATION), source, "generation")
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
    )


def _event_spec(
    kind: str, body: object, source: str, key: str, default_types: Mapping[str, str]
) -> EventSpec:
    if isinstance(body, str):
        body = {"pattern": body}
    spec = _mapping(body, source, key)
    _known_keys(spec, _EVENT_KEYS, source, key)
    if ("pattern" in spec) == ("patterns" in spec):
        raise ConfigError(source, key, "give exactly one of 'pattern' or 'patterns'")
    patterns: tuple[re.Pattern[str], ...]
    if "pattern" in spec:
        patterns = (_regex(spec["pattern"], source, f"{key}.pattern"),)
    else:
        raw = spec["patterns"]
        if not isinstance(raw, list) or not raw:
            raise ConfigError(source, f"{key}.patterns", "must be a non-empty list", value=raw)
        patterns = tuple(_regex(p, source, f"{key}.patterns[{i}]") for i, p in enumerate(raw))
    kv = spec.get("kv", False)
    if not isinstance(kv, bool):
        raise ConfigError(source, f"{key}.kv", "must be true or false", value=kv)
    groups = {name for p in patterns for name in p.groupindex}
    fields = {k: v for k, v in default_types.items() if k in groups}
    for name, type_name in _mapping(spec.get("fields", {}), source, f"{key}.fields").items():
        where = f"{key}.fields.{name}"
        if type_name not in TYPE_NAMES:
            raise ConfigError(
                source, where, f"type {type_name!r} unknown", value=type_name, allowed=TYPE_NAMES
            )
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
    return EventSpec(kind, patterns, fields, units, kv)


def _mapping(value: object, source: str, key: str) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            source,
            key or "(top level)",
            f"must be a mapping, not {type(value).__name__}",
            value=value,
        )
    return {str(k): v for k, v in value.items()}


def _known_keys(
    mapping: Mapping[str, object], allowed: Sequence[str], source: str, key: str
) -> None:
    for name in mapping:
        if name not in allowed:
            where = f"{key}.{name}" if key else name
            raise ConfigError(source, where, "unknown key", value=name, allowed=allowed)


def _string(value: object, source: str, key: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(source, key, f"must be a string, not {type(value).__name__}", value=value)
    return value


def _regex(value: object, source: str, key: str) -> re.Pattern[str]:
    text = _string(value, source, key)
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(
            source, key, f"bad regular expression {text!r}: {exc}", value=text
        ) from exc

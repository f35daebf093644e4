"""Board files: YAML -> a validated, frozen :class:`Board`, plus ``--bm-set`` overrides.

Every error is a :class:`ConfigError` naming the file (or the override), the key, the bad
value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pytest_baremetal import safe_yaml, targets
from pytest_baremetal import validate as v
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.perf_settings import BoardPerf, parse_board_perf

FEATURES = ("avx", "avx2", "fma", "avx512", "network", "pxe", "repl", "display", "usb")
TIMEOUT_KEYS = ("firmware", "boot", "run", "quiet")
COMMON_KEYS = ("kind", "description", "features", "timeouts", "perf")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")

S = TypeVar("S")


@dataclass(frozen=True)
class Timeouts:
    """Seconds; None means the plugin's default."""

    firmware: float | None = None
    boot: float | None = None
    run: float | None = None
    quiet: float | None = None  # no console output for this long while waiting: a hang


@dataclass(frozen=True)
class Board(Generic[S]):
    """One target machine: the keys every board has, plus its kind's typed spec."""

    name: str
    kind: str
    spec: S
    description: str = ""
    features: tuple[str, ...] = ()
    timeouts: Timeouts = Timeouts()
    perf: BoardPerf = field(default_factory=BoardPerf)
    path: Path | None = field(default=None, compare=False)
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def where(self) -> v.Where:
        """Where this board came from, for errors about it."""
        return v.Where(str(self.path or self.name),
                       self.path.parent if self.path is not None else Path.cwd())


# -- loading ------------------------------------------------------------------------------

def load_board(path: str | Path) -> Board[Any]:
    """Read and validate one board file; the board's name is the file stem."""
    path = Path(path)
    data = safe_yaml.load_file(path, "board file")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, "", f"expected a mapping of keys, got {v.type_name(data)}")
    return _validate(data, path.stem, v.Where(str(path), path.parent), path)


def board_paths(dirs: Iterable[str | Path]) -> dict[str, Path]:
    """Board name -> file, over ``*.yaml``/``*.yml`` in ``dirs``; earlier folders win."""
    found: dict[str, Path] = {}
    for folder in dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for file in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            found.setdefault(file.stem, file)
    return dict(sorted(found.items()))


def load_named(name: str, dirs: Iterable[str | Path]) -> Board[Any]:
    """Load the board called ``name`` from the first folder that has it."""
    dirs = list(dirs)
    paths = board_paths(dirs)
    if name not in paths:
        folders = ", ".join(str(d) for d in dirs) or "no folders"
        raise ConfigError(f"--target {name}", "", f"no board file {name}.yaml in {folders}",
                          value=name, allowed=sorted(paths))
    return load_board(paths[name])


def with_overrides(board: Board[S], options: Sequence[str]) -> Board[S]:
    """Apply ``key=value`` options (``timeouts.boot=60`` for nested keys), re-validated."""
    data: dict[str, Any] = _deepcopy(board.source) if board.source else _to_source(board)
    base = board.where.base
    for option in options:
        where = f"--bm-set {option}"
        if _CONTROL.search(option):
            raise ConfigError(f"--bm-set {option!r}", "", "control characters (newline, "
                              "escape, NUL...) are not allowed: one line of KEY=VALUE")
        key, sep, text = option.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(where, "", "expected KEY=VALUE, e.g. cpu=max or timeouts.boot=60")
        try:
            value = safe_yaml.loads(text, where) if text.strip() else None
        except ConfigError as error:
            if "YAML syntax error" not in str(error):
                raise  # aliases, NaN: refused, not taken as a string
            value = text
        target = data
        parts = key.split(".")
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        target[parts[-1]] = value
        _validate(data, board.name, v.Where(where, base), board.path)
    final = v.Where(f"{board.path or board.name} with --bm-set " + " ".join(options), base)
    updated: Board[S] = _validate(data, board.name, final, board.path)
    return updated


# -- validation ---------------------------------------------------------------------------

def _validate(data: Mapping[str, Any], name: str, where: v.Where,
              path: Path | None) -> Board[Any]:
    for key in data:
        if not isinstance(key, str):
            raise where.error(str(key), f"unknown key {key!r}", allowed=COMMON_KEYS)
    kind_name = data.get("kind")
    if kind_name is None:
        raise where.error("kind", "missing required key 'kind'", allowed=targets.names())
    kind = targets.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise where.error("kind", f"invalid value {v.shorten(kind_name)}"
                          f"{v.suggest(kind_name, targets.names())}", value=kind_name,
                          allowed=targets.names())
    for key in data:
        if key not in COMMON_KEYS and key not in kind.keys:
            others = [k for other in targets.names() if other != kind.name
                      for k in _keys_of(other)]
            if key in others:
                raise where.error(key, f"key {key!r} does not apply to kind {kind.name}",
                                  allowed=COMMON_KEYS + kind.keys)
            v.known_keys({key: None}, COMMON_KEYS + kind.keys, where)
    for key in kind.required:
        if key not in data:
            raise where.error(key, f"missing required key {key!r} (kind {kind.name})")
    own = {k: data[k] for k in kind.keys if k in data}
    return Board(
        name=name,
        kind=kind.name,
        spec=kind.parse(own, where, name),
        description=v.string(data.get("description"), where, "description"),
        features=_features(data.get("features"), where),
        timeouts=_timeouts(data.get("timeouts"), where),
        perf=parse_board_perf(data.get("perf"), where.place),
        path=path,
        source=_deepcopy(data),
    )


def _keys_of(kind_name: str) -> tuple[str, ...]:
    kind = targets.get(kind_name)
    return kind.keys if kind is not None else ()


def _features(value: object, where: v.Where) -> tuple[str, ...]:
    features = v.strings(value, where, "features")
    for feature in features:
        if feature not in FEATURES:
            raise where.error("features", f"unknown feature {feature!r}"
                              f"{v.suggest(feature, FEATURES)}", value=feature,
                              allowed=FEATURES)
    return tuple(dict.fromkeys(features))


def _timeouts(value: object, where: v.Where) -> Timeouts:
    if value is None:
        return Timeouts()
    data = v.mapping(value, where, "timeouts", "a mapping like {boot: 60}")
    v.known_keys(data, TIMEOUT_KEYS, where, "timeouts.")
    return Timeouts(**{key: v.seconds(item, where, f"timeouts.{key}")
                       for key, item in data.items()})


def _deepcopy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deepcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deepcopy(v) for v in value]
    return value


def _to_source(board: Board[Any]) -> dict[str, Any]:
    """A mapping equivalent to a board built in code (no source file)."""
    kind = targets.get(board.kind)
    if kind is None:
        raise ConfigError(str(board.name), "kind", f"no board kind {board.kind!r} is installed")
    data: dict[str, Any] = {"kind": board.kind, "description": board.description,
                            "features": list(board.features)}
    data["timeouts"] = {k: val for k, val in vars(board.timeouts).items() if val is not None}
    data.update(kind.source(board.spec))
    return data

"""Board files: YAML -> a validated, frozen :class:`Board`, plus ``--bm-set`` overrides.

Every error is a :class:`ConfigError` naming the file (or the override), the key, the bad
value and what is allowed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pytest_baremetal.errors import ConfigError

KINDS = ("qemu", "physical")
ACCELS = ("tcg", "kvm", "whpx", "hvf")
MACHINES = ("pc", "q35")
NICS = ("e1000", "virtio-net-pci", "rtl8139")
NET_MODES = ("user",)
FEATURES = ("avx", "avx2", "fma", "avx512", "network", "pxe", "repl", "display", "usb")
TIMEOUT_KEYS = ("firmware", "boot", "run", "quiet")
MIN_MEMORY_MIB = 128

COMMON_KEYS = ("kind", "description", "features", "timeouts")
QEMU_KEYS = ("accel", "cpu", "machine", "memory", "smp", "firmware", "extra_args",
             "fallback", "network", "display")
PHYSICAL_KEYS = ("physical",)
ALL_KEYS = COMMON_KEYS + QEMU_KEYS + PHYSICAL_KEYS
REQUIRED = {"qemu": ("kind", "accel", "cpu"), "physical": ("kind", "physical")}


@dataclass(frozen=True)
class Firmware:
    """``auto`` (search the host), one unified image, or split CODE + VARS."""

    unified: Path | None = None
    code: Path | None = None
    vars: Path | None = None

    @property
    def auto(self) -> bool:
        return self.unified is None and self.code is None

    @property
    def split(self) -> bool:
        return self.code is not None


@dataclass(frozen=True)
class Network:
    """A NIC on QEMU user networking; ``options`` go on ``-netdev user`` (tftp, bootfile...)."""

    nic: str = "e1000"
    mode: str = "user"
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Timeouts:
    """Seconds; None means the plugin's default."""

    firmware: float | None = None
    boot: float | None = None
    run: float | None = None
    quiet: float | None = None  # no console output for this long while waiting: a hang


@dataclass(frozen=True)
class Board:
    """One target machine, as a board file describes it."""

    name: str
    kind: str = "qemu"
    description: str = ""
    accel: str = "tcg"
    cpu: str = "max"
    machine: str = "pc"
    memory: int = 1024
    smp: int = 1
    firmware: Firmware = Firmware()
    extra_args: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    fallback: str | None = None
    network: Network | None = None
    timeouts: Timeouts = Timeouts()
    display: bool = False
    physical: Mapping[str, Any] | None = field(default=None, compare=False)
    path: Path | None = field(default=None, compare=False)
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


# -- loading ------------------------------------------------------------------------------

def load_board(path: str | Path) -> Board:
    """Read and validate one board file; the board's name is the file stem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(path, "", f"cannot read board file: {error.strerror}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(path, "", f"YAML syntax error at {where}{problem}") from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path, "", f"expected a mapping of keys, got {_type(data)}")
    return _validate(data, path.stem, str(path), path.parent, path)


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


def load_named(name: str, dirs: Iterable[str | Path]) -> Board:
    """Load the board called ``name`` from the first folder that has it."""
    dirs = list(dirs)
    paths = board_paths(dirs)
    if name not in paths:
        folders = ", ".join(str(d) for d in dirs) or "no folders"
        raise ConfigError(f"--target {name}", "", f"no board file {name}.yaml in {folders}",
                          value=name, allowed=sorted(paths))
    return load_board(paths[name])


def with_overrides(board: Board, options: Sequence[str]) -> Board:
    """Apply ``key=value`` options (``timeouts.boot=60`` for nested keys), re-validated."""
    data: dict[str, Any] = _deepcopy(board.source) if board.source else _to_source(board)
    base = board.path.parent if board.path else Path.cwd()
    for option in options:
        where = f"--bm-set {option}"
        key, sep, text = option.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(where, "", "expected KEY=VALUE, e.g. cpu=max or timeouts.boot=60")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
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
        _validate(data, board.name, where, base, board.path)
    return _validate(data, board.name, f"{board.path or board.name} with --bm-set "
                     + " ".join(options), base, board.path)


def tcg_fallback(board: Board) -> Board:
    """The board as TCG runs it (``fallback: tcg``): ``host`` becomes ``max``, no fallback."""
    cpu = "max" if board.cpu.split(",")[0] == "host" else board.cpu
    return replace(board, accel="tcg", cpu=cpu, fallback=None)


# -- validation ---------------------------------------------------------------------------

def _validate(data: Mapping[str, Any], name: str, where: str, base: Path,
              path: Path | None) -> Board:
    for key in data:
        if not isinstance(key, str) or key not in ALL_KEYS:
            raise ConfigError(where, str(key), f"unknown key {key!r}{_suggest(key, ALL_KEYS)}",
                              value=key, allowed=ALL_KEYS)
    kind = _choice(data, "kind", KINDS, where, default=None)
    if kind is None:
        raise ConfigError(where, "kind", "missing required key 'kind'", allowed=KINDS)
    for key in REQUIRED[kind]:
        if key not in data:
            raise ConfigError(where, key, f"missing required key {key!r} (kind {kind})")
    own = QEMU_KEYS if kind == "qemu" else PHYSICAL_KEYS
    for key in data:
        if key not in COMMON_KEYS and key not in own:
            raise ConfigError(where, key, f"key {key!r} does not apply to kind {kind}",
                              allowed=COMMON_KEYS + own)
    common: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "description": _string(data, "description", where, ""),
        "features": _features(data, where),
        "timeouts": _timeouts(data, where),
        "path": path,
        "source": _deepcopy(data),
    }
    if kind == "physical":
        section = data["physical"]
        if not isinstance(section, dict):
            raise ConfigError(where, "physical", f"expected a mapping, got {_type(section)}")
        # Validated here (pure data, no labgrid); the physical target parses it again.
        from pytest_baremetal.physical.schema import parse as parse_physical

        parse_physical(section, where, base)
        return Board(physical=section, **common)
    return Board(
        accel=_choice(data, "accel", ACCELS, where, "tcg") or "tcg",
        cpu=_cpu(data, where),
        machine=_choice(data, "machine", MACHINES, where, "pc") or "pc",
        memory=_memory(data.get("memory", 1024), where),
        smp=_int(data, "smp", where, 1, minimum=1),
        firmware=_firmware(data.get("firmware", "auto"), where, base),
        extra_args=_strings(data, "extra_args", where),
        fallback=_fallback(data, where, name),
        network=_network(data.get("network"), where),
        display=_bool(data, "display", where, False),
        **common,
    )


def _type(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _suggest(key: object, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _choice(data: Mapping[str, Any], key: str, allowed: Sequence[str], where: str,
            default: str | None, label: str = "") -> str | None:
    value = data.get(key, default)
    if value is None and default is None:
        return None
    if not isinstance(value, str) or value not in allowed:
        hint = _suggest(value, allowed) if isinstance(value, str) else ""
        raise ConfigError(where, label or key, f"invalid value {value!r}{hint}", value=value,
                          allowed=allowed)
    return value


def _string(data: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConfigError(where, key, f"expected a string, got {_type(value)} {value!r}")
    return value


def _cpu(data: Mapping[str, Any], where: str) -> str:
    value = _string(data, "cpu", where, "max")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*(,[A-Za-z0-9_.+=-]+)*", value):
        raise ConfigError(where, "cpu", f"invalid CPU model {value!r}: expected a QEMU -cpu "
                          "name such as max, host, qemu64 or Skylake-Client[,+avx2]")
    return value


def _int(data: Mapping[str, Any], key: str, where: str, default: int, minimum: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(where, key, f"expected an integer >= {minimum}, "
                          f"got {_type(value)} {value!r}")
    if value < minimum:
        raise ConfigError(where, key, f"{value} is too small: expected an integer >= {minimum}")
    return value


def _bool(data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(where, key, f"expected true or false, got {_type(value)} {value!r}")
    return value


_MEMORY = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[MG]?)(?:i?B)?", re.IGNORECASE)


def _memory(value: object, where: str) -> int:
    """MiB from an int or a string like ``2G``, ``512M``, ``4096``."""
    mib: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        mib = value
    elif isinstance(value, str) and (match := _MEMORY.fullmatch(value.strip())):
        mib = float(match["n"]) * (1024 if match["unit"].upper() == "G" else 1)
    if mib is None or mib != int(mib):
        raise ConfigError(where, "memory", f"invalid value {value!r}: expected MiB as an "
                          "integer, or a size like 512M or 2G")
    if mib < MIN_MEMORY_MIB:
        raise ConfigError(where, "memory", f"{value!r} is {int(mib)} MiB: OVMF needs at "
                          f"least {MIN_MEMORY_MIB} MiB")
    return int(mib)


def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(where, key, f"expected a list of strings, got {value!r}")
    return tuple(value)


def _features(data: Mapping[str, Any], where: str) -> tuple[str, ...]:
    features = _strings(data, "features", where)
    for feature in features:
        if feature not in FEATURES:
            raise ConfigError(where, "features", f"unknown feature {feature!r}"
                              f"{_suggest(feature, FEATURES)}", value=feature,
                              allowed=FEATURES)
    return tuple(dict.fromkeys(features))


def _timeouts(data: Mapping[str, Any], where: str) -> Timeouts:
    value = data.get("timeouts")
    if value is None:
        return Timeouts()
    if not isinstance(value, dict):
        raise ConfigError(where, "timeouts", f"expected a mapping like {{boot: 60}}, "
                          f"got {_type(value)} {value!r}")
    seconds: dict[str, float] = {}
    for key, item in value.items():
        if key not in TIMEOUT_KEYS:
            raise ConfigError(where, f"timeouts.{key}", f"unknown key {key!r}"
                              f"{_suggest(key, TIMEOUT_KEYS)}", allowed=TIMEOUT_KEYS)
        if isinstance(item, bool) or not isinstance(item, (int, float)) or item <= 0:
            raise ConfigError(where, f"timeouts.{key}", f"expected seconds > 0, got {item!r}")
        seconds[key] = float(item)
    return Timeouts(**seconds)


def _firmware(value: object, where: str, base: Path) -> Firmware:
    if value is None or value == "auto":
        return Firmware()
    forms = ("auto", "{unified: PATH}", "{code: PATH, vars: PATH}")
    if not isinstance(value, dict):
        raise ConfigError(where, "firmware", f"invalid value {value!r}", allowed=forms)
    keys = set(value)
    if keys not in ({"unified"}, {"code", "vars"}):
        raise ConfigError(where, "firmware", f"invalid keys {sorted(map(str, keys))}",
                          allowed=forms)
    paths: dict[str, Path] = {}
    for key, item in value.items():
        if not isinstance(item, str) or not item:
            raise ConfigError(where, f"firmware.{key}", f"expected a file path, got {item!r}")
        path = Path(item).expanduser()
        paths[key] = path if path.is_absolute() else base / path
    return Firmware(**paths)


def _fallback(data: Mapping[str, Any], where: str, name: str) -> str | None:
    value = data.get("fallback")
    if value is None or value in ("none", False):
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        raise ConfigError(where, "fallback", f"invalid value {value!r}: expected a board "
                          "name, tcg or none")
    if value == name:
        raise ConfigError(where, "fallback", f"board {name!r} cannot fall back to itself")
    return value


def _network(value: object, where: str) -> Network | None:
    if value is None or value in ("none", False):
        return None
    if not isinstance(value, dict):
        raise ConfigError(where, "network", f"expected a mapping like {{nic: e1000, mode: "
                          f"user}} or none, got {value!r}")
    allowed = ("nic", "mode", "options")
    for key in value:
        if key not in allowed:
            raise ConfigError(where, f"network.{key}", f"unknown key {key!r}"
                              f"{_suggest(key, allowed)}", allowed=allowed)
    nic = _choice(value, "nic", NICS, where, "e1000", "network.nic") or "e1000"
    mode = _choice(value, "mode", NET_MODES, where, "user", "network.mode") or "user"
    options = value.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(where, "network.options", f"expected a mapping like {{tftp: DIR}}, "
                          f"got {options!r}")
    pairs: list[tuple[str, str]] = []
    for key, item in options.items():
        if not isinstance(key, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            raise ConfigError(where, f"network.options.{key}", "invalid option name")
        if isinstance(item, (dict, list)) or item is None:
            raise ConfigError(where, f"network.options.{key}",
                              f"expected a scalar, got {item!r}")
        pairs.append((key, str(item)))
    return Network(nic=nic, mode=mode, options=tuple(pairs))


def _deepcopy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deepcopy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deepcopy(v) for v in value]
    return value


def _to_source(board: Board) -> dict[str, Any]:
    """A mapping equivalent to a board built in code (no source file)."""
    data: dict[str, Any] = {"kind": board.kind, "description": board.description,
                            "features": list(board.features)}
    data["timeouts"] = {k: getattr(board.timeouts, k) for k in TIMEOUT_KEYS
                        if getattr(board.timeouts, k) is not None}
    if board.kind == "physical":
        data["physical"] = _deepcopy(board.physical or {})
        return data
    fw = board.firmware
    firmware: Any = ("auto" if fw.auto else {"unified": str(fw.unified)} if fw.unified
                     else {"code": str(fw.code), "vars": str(fw.vars)})
    network: Any = None
    if board.network:
        network = {"nic": board.network.nic, "mode": board.network.mode,
                   "options": dict(board.network.options)}
    data.update(accel=board.accel, cpu=board.cpu, machine=board.machine, memory=board.memory,
                smp=board.smp, firmware=firmware, extra_args=list(board.extra_args),
                fallback=board.fallback, network=network, display=board.display)
    return data

"""A QEMU board's own keys (accel, cpu, memory, firmware...) -> a frozen :class:`QemuSpec`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pytest_baremetal import validate as v
from pytest_baremetal.boards import Board
from pytest_baremetal.errors import ConfigError

ACCELS = ("tcg", "kvm", "whpx", "hvf")
MACHINES = ("pc", "q35")
NICS = ("e1000", "virtio-net-pci", "rtl8139")
NET_MODES = ("user",)
#: what ``fallback:`` can do: boot again with TCG, or fail
FALLBACKS = ("tcg", "none")
MIN_MEMORY_MIB = 128
MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB: QEMU's own ceiling is far below
MAX_SMP = 1024
KEYS = ("accel", "cpu", "machine", "memory", "smp", "firmware", "extra_args", "fallback",
        "network", "display")


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
class QemuSpec:
    """How QEMU emulates the board."""

    accel: str = "tcg"
    cpu: str = "max"
    machine: str = "pc"
    memory: int = 1024
    smp: int = 1
    firmware: Firmware = Firmware()
    extra_args: tuple[str, ...] = ()
    #: boot again with TCG when the accelerator cannot run the guest
    fallback_to_tcg: bool = False
    network: Network | None = None
    display: bool = False

    def as_tcg(self) -> QemuSpec:
        """The board as TCG runs it: ``host`` becomes ``max``, no further fallback."""
        cpu = "max" if self.cpu.split(",")[0] == "host" else self.cpu
        return replace(self, accel="tcg", cpu=cpu, fallback_to_tcg=False)


def qemu_board(name: str, **spec: Any) -> Board[QemuSpec]:
    """A QEMU board made in code (tests, doctor): ``qemu_board("t", accel="kvm")``."""
    return Board(name=name, kind="qemu", spec=QemuSpec(**spec))


def tcg_fallback(board: Board[QemuSpec]) -> Board[QemuSpec]:
    """The board as TCG runs it (``fallback: tcg``)."""
    return replace(board, spec=board.spec.as_tcg())


# -- parsing ------------------------------------------------------------------------------

def parse(data: Mapping[str, Any], where: v.Where, name: str) -> QemuSpec:
    return QemuSpec(
        accel=v.choice(data.get("accel", "tcg"), ACCELS, where, "accel"),
        cpu=_cpu(data.get("cpu"), where),
        machine=v.choice(data.get("machine", "pc"), MACHINES, where, "machine"),
        memory=_memory(data.get("memory", 1024), where),
        smp=v.integer(data.get("smp", 1), where, "smp", 1, MAX_SMP),
        firmware=_firmware(data.get("firmware", "auto"), where),
        extra_args=v.strings(data.get("extra_args"), where, "extra_args"),
        fallback_to_tcg=_fallback(data.get("fallback"), where, name),
        network=_network(data.get("network"), where),
        display=v.boolean(data.get("display", False), where, "display"),
    )


def source(spec: QemuSpec) -> dict[str, Any]:
    """Board-file keys equivalent to ``spec``."""
    fw = spec.firmware
    firmware: Any = ("auto" if fw.auto else {"unified": str(fw.unified)} if fw.unified
                     else {"code": str(fw.code), "vars": str(fw.vars)})
    network: Any = None
    if spec.network:
        network = {"nic": spec.network.nic, "mode": spec.network.mode,
                   "options": dict(spec.network.options)}
    return {"accel": spec.accel, "cpu": spec.cpu, "machine": spec.machine,
            "memory": spec.memory, "smp": spec.smp, "firmware": firmware,
            "extra_args": list(spec.extra_args),
            "fallback": "tcg" if spec.fallback_to_tcg else "none", "network": network,
            "display": spec.display}


def summary(spec: QemuSpec) -> str:
    line = f"{spec.accel:<4} {spec.cpu:<15} {spec.machine:<3} {spec.memory:>5} MiB"
    return line + ("  fallback=tcg" if spec.fallback_to_tcg else "")


def _cpu(value: object, where: v.Where) -> str:
    text = v.string(value, where, "cpu", "max")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*(,[A-Za-z0-9_.+=-]+)*", text):
        raise where.error("cpu", f"invalid CPU model {v.shorten(text)}: expected a QEMU -cpu "
                          "name such as max, host, qemu64 or Skylake-Client[,+avx2]")
    return text


_MEMORY = re.compile(r"(?P<n>\d{1,12}(?:\.\d{1,6})?)\s*(?P<unit>[MG]?)(?:i?B)?", re.IGNORECASE)


def _memory(value: object, where: v.Where) -> int:
    """MiB from an int or a string like ``2G``, ``512M``, ``4096``."""
    mib: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        mib = value if value <= MAX_MEMORY_MIB else None
    elif isinstance(value, str) and (match := _MEMORY.fullmatch(value.strip())):
        mib = float(match["n"]) * (1024 if match["unit"].upper() == "G" else 1)
    if mib is None or mib != int(mib) or mib > MAX_MEMORY_MIB:
        raise where.error("memory", f"invalid value {v.shorten(value)}: expected MiB as an "
                          f"integer, or a size like 512M or 2G (at most {MAX_MEMORY_MIB} MiB)")
    if mib < MIN_MEMORY_MIB:
        raise where.error("memory", f"{value!r} is {int(mib)} MiB: OVMF needs at least "
                          f"{MIN_MEMORY_MIB} MiB")
    return int(mib)


def _firmware(value: object, where: v.Where) -> Firmware:
    if value is None or value == "auto":
        return Firmware()
    forms = ("auto", "{unified: PATH}", "{code: PATH, vars: PATH}")
    if not isinstance(value, dict):
        raise where.error("firmware", f"invalid value {v.shorten(value)}", allowed=forms)
    keys = set(value)
    if keys not in ({"unified"}, {"code", "vars"}):
        raise where.error("firmware", f"invalid keys {sorted(map(str, keys))}", allowed=forms)
    paths: dict[str, Path] = {}
    for key, item in value.items():
        if not isinstance(item, str) or not item:
            raise where.error(f"firmware.{key}", f"expected a file path, got {item!r}")
        paths[key] = v.path(item, where)
    return Firmware(**paths)


def _fallback(value: object, where: v.Where, name: str) -> bool:
    """``tcg`` (boot again with TCG) or ``none``: the only fallbacks that work."""
    if value is None or value is False or value == "none":
        return False
    if value == "tcg":
        return True
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        raise ConfigError(where.place, "fallback", f"{value!r} is not supported: a board falls "
                          "back only to TCG on the same machine (fallback: tcg) or not at all "
                          f"(fallback: none){v.suggest(value, FALLBACKS)}; falling back to "
                          "another board file is not supported", value=value)
    raise where.error("fallback", f"invalid value {v.shorten(value)}", allowed=FALLBACKS)


def _network(value: object, where: v.Where) -> Network | None:
    if value is None or value in ("none", False):
        return None
    data = v.mapping(value, where, "network", "a mapping like {nic: e1000, mode: user} or none")
    v.known_keys(data, ("nic", "mode", "options"), where, "network.")
    nic = v.choice(data.get("nic", "e1000"), NICS, where, "network.nic")
    mode = v.choice(data.get("mode", "user"), NET_MODES, where, "network.mode")
    options = v.mapping(data.get("options") or {}, where, "network.options",
                        "a mapping like {tftp: DIR}")
    pairs: list[tuple[str, str]] = []
    for key, item in options.items():
        if not isinstance(key, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", key):
            raise where.error(f"network.options.{key}", "invalid option name")
        if isinstance(item, dict | list) or item is None:
            raise where.error(f"network.options.{key}", f"expected a scalar, got {item!r}")
        pairs.append((key, str(item)))
    return Network(nic=nic, mode=mode, options=tuple(pairs))

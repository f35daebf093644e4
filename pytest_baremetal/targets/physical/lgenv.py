"""Boards from a labgrid environment file (``--lg-env``), so a lab that already describes its
machines for labgrid runs the suites without rewriting its YAML.

Each labgrid target becomes a physical board of the same name: its serial resource
(``USBSerialPort`` by udev match, ``RawSerialPort`` by device, ``NetworkSerialPort`` as RFC
2217) is the console, its power driver (any labgrid ``*PowerDriver``, with its power
resource) the power. labgrid has no notion of how the build gets onto the machine, so the
boot is ``disk``, written to the device the target's labgrid ``options`` name as
``bm_write_to`` when given. A board file of the same name in the project wins (PXE, a MAC).
The file is read with labgrid's own parser (templates, ``LG_*`` variables).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_baremetal.errors import ConfigError

SERIAL = ("USBSerialPort", "RawSerialPort", "NetworkSerialPort")
NOT_POWER = (*SERIAL, "USBSDMuxDevice", "USBSDWireDevice", "USBMassStorage", "NetworkService",
             "USBNetworkInterface", "RemotePlace")


def _entries(section: object, where: str) -> list[tuple[str, dict[str, Any]]]:
    """labgrid allows ``{Class: {args}}`` or ``[{Class: {args}}, ...]``."""
    items = section if isinstance(section, list) else [section] if section else []
    out: list[tuple[str, dict[str, Any]]] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ConfigError(where, "", f"expected a mapping of class names, got {item!r}")
        for cls, args in item.items():
            args = dict(args or {})
            args.pop("name", None)
            out.append((str(cls), args))
    return out


def _console(resources: list[tuple[str, dict[str, Any]]], where: str) -> dict[str, Any]:
    for cls, args in resources:
        baud = int(args.get("speed", 115200))
        if cls == "USBSerialPort":
            match = {str(k): str(v) for k, v in (args.get("match") or {}).items()}
            parent = [k for k in match if not k.isupper() or k.startswith("@")]
            if not match or parent:
                raise ConfigError(where, "USBSerialPort.match", "only plain udev properties "
                                  f"(ID_SERIAL_SHORT: ...) map to a console; got {match}")
            return {"udev": match, "baud": baud}
        if cls == "RawSerialPort":
            return {"device": str(args["port"]), "baud": baud}
        if cls == "NetworkSerialPort":
            return {"rfc2217": f"{args['host']}:{args['port']}", "baud": baud}
    raise ConfigError(where, "resources", f"no serial resource ({', '.join(SERIAL)}): the "
                      "suites read the board's console")


def _power(resources: list[tuple[str, dict[str, Any]]],
           drivers: list[tuple[str, dict[str, Any]]], where: str) -> dict[str, Any] | str:
    power = [(cls, args) for cls, args in drivers
             if cls.endswith("PowerDriver") or cls == "PDUDaemonDriver"]
    if not power:
        return "manual"
    driver, args = power[0]
    section: dict[str, Any] = {"driver": driver, "args": args}
    candidates = [(cls, a) for cls, a in resources if cls not in NOT_POWER]
    if len(candidates) > 1:
        candidates = [(cls, a) for cls, a in candidates if "Power" in cls] or candidates[:1]
    if candidates:
        section["resource"], section["resource_args"] = candidates[0]
    return {"labgrid": section}


def board_data(env_file: Path) -> dict[str, dict[str, Any]]:
    """Board name -> board file contents, one per labgrid target of ``env_file``."""
    try:
        from labgrid.config import Config
    except ImportError:
        raise ConfigError(f"--lg-env {env_file}: reading a labgrid environment needs the "
                          "lab extra: pip install 'pytest-baremetal[lab]'") from None
    try:
        targets = Config(str(env_file)).get_targets()
    except Exception as error:  # labgrid's own errors name the problem
        raise ConfigError(f"--lg-env {env_file}: {error}") from None
    boards: dict[str, dict[str, Any]] = {}
    for name, target in (targets or {}).items():
        where = f"{env_file} targets.{name}"
        target = target or {}
        resources = _entries(target.get("resources"), f"{where}.resources")
        drivers = _entries(target.get("drivers"), f"{where}.drivers")
        options = dict(target.get("options") or {})
        physical: dict[str, Any] = {
            "console": _console(resources, where),
            "power": _power(resources, drivers, where),
            "boot": "disk",
        }
        if options.get("bm_write_to"):
            physical["boot"] = {"disk": {"write_to": str(options["bm_write_to"])}}
        if options.get("bm_mac"):
            physical["mac"] = str(options["bm_mac"]).lower()
        boards[str(name)] = {"kind": "physical",
                             "description": f"labgrid target {name} ({env_file.name})",
                             "physical": physical}
    if not boards:
        raise ConfigError(f"--lg-env {env_file}: no targets")
    return boards


def write_boards(env_file: Path, folder: Path) -> Path:
    """Writes one board file per target into ``folder``; returns it (for board_dirs)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    for name, data in board_data(env_file).items():
        (folder / f"{name}.yaml").write_text(
            f"# generated from {env_file} (--lg-env); edit that file, not this one\n"
            + yaml.safe_dump(data, sort_keys=False))
    return folder

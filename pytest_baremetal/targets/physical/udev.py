"""Finding a serial adapter by udev properties (ID_SERIAL_SHORT, ID_PATH, ...).

``match`` works on any iterable of :class:`UdevDevice`: the live ones from pyudev
(``live_devices``) or ones recorded with ``udevadm info --query=all --name=/dev/ttyUSB0``
(``parse_udevadm``), which is how the matching is tested on machines without a USB bus.
A value may be a shell-style pattern (``ID_PATH: pci-0000:00:14.0-usb-0:2*``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_baremetal.errors import BootError, SerialError


@dataclass(frozen=True)
class UdevDevice:
    node: str
    properties: Mapping[str, str]


def parse_udevadm(text: str) -> list[UdevDevice]:
    """Devices from ``udevadm info --query=all`` (or ``udevadm info --export-db``) output."""
    devices: list[UdevDevice] = []
    props: dict[str, str] = {}
    node = ""
    for raw in [*text.splitlines(), ""]:
        line = raw.strip()
        if not line:
            if props or node:
                devices.append(UdevDevice(node or props.get("DEVNAME", ""), dict(props)))
            props, node = {}, ""
            continue
        tag, _, rest = line.partition(": ")
        if tag == "N":
            node = rest if rest.startswith("/") else f"/dev/{rest}"
        elif tag == "E" and "=" in rest:
            key, _, value = rest.partition("=")
            props[key] = value
    return devices


def matches(device: UdevDevice, wanted: Sequence[tuple[str, str]]) -> bool:
    return all(key in device.properties and fnmatch.fnmatchcase(device.properties[key], value)
               for key, value in wanted)


def match(devices: Iterable[UdevDevice], wanted: Sequence[tuple[str, str]]) -> UdevDevice:
    """The one tty device with all the wanted properties; BootError naming the candidates
    when none or several match."""
    candidates = [d for d in devices if d.properties.get("SUBSYSTEM", "tty") == "tty"]
    found = [d for d in candidates if matches(d, wanted)]
    want = " ".join(f"{k}={v}" for k, v in wanted)
    if len(found) == 1:
        return found[0]
    if not found:
        seen = "; ".join(_summary(d) for d in candidates) or "no serial devices at all"
        raise SerialError(f"no serial adapter matches udev {want} (is it plugged in?); "
                        f"present: {seen}")
    nodes = ", ".join(sorted(d.node for d in found))
    raise BootError(f"udev {want} matches several adapters ({nodes}): add ID_SERIAL_SHORT or "
                    "ID_PATH to pick one")


def _summary(device: UdevDevice) -> str:
    keys = ("ID_SERIAL_SHORT", "ID_PATH", "ID_MODEL")
    return device.node + " (" + ", ".join(
        f"{k}={device.properties[k]}" for k in keys if k in device.properties) + ")"


def live_devices() -> list[UdevDevice]:  # pragma: no cover - needs udev and a USB bus
    """The host's tty devices as udev sees them now."""
    import pyudev

    context: Any = pyudev.Context()
    return [UdevDevice(str(d.device_node), dict(d.properties))
            for d in context.list_devices(subsystem="tty") if d.device_node]


def find_node(wanted: Sequence[tuple[str, str]]) -> str:
    """The device node (e.g. /dev/ttyUSB0) of the adapter matching these properties now."""
    return match(live_devices(), wanted).node

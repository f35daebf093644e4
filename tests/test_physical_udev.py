"""udev matching against device properties recorded on a lab host (tests/data/udev)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_baremetal.errors import BootError
from pytest_baremetal.targets.physical.udev import UdevDevice, match, parse_udevadm

DATA = Path(__file__).parent / "data" / "udev"


@pytest.fixture
def devices() -> list[UdevDevice]:
    found: list[UdevDevice] = []
    for path in sorted(DATA.glob("*.txt")):
        found += parse_udevadm(path.read_text())
    return found


def test_recordings_parse(devices: list[UdevDevice]) -> None:
    nodes = sorted(d.node for d in devices)
    assert nodes == ["/dev/ttyS0", "/dev/ttyUSB0", "/dev/ttyUSB1", "/dev/ttyUSB2"]
    ftdi = next(d for d in devices if d.node == "/dev/ttyUSB0")
    assert ftdi.properties["ID_SERIAL_SHORT"] == "A10KJ2F1"


def test_console_by_serial_number(devices: list[UdevDevice]) -> None:
    assert match(devices, [("ID_SERIAL_SHORT", "A10KJ2F1")]).node == "/dev/ttyUSB0"


def test_relays_without_serial_told_apart_by_usb_path(devices: list[UdevDevice]) -> None:
    wanted = [("ID_VENDOR_ID", "1a86"), ("ID_PATH", "pci-0000:00:14.0-usb-0:4:1.0")]
    assert match(devices, wanted).node == "/dev/ttyUSB2"
    assert match(devices, [("ID_PATH", "*usb-0:3:*")]).node == "/dev/ttyUSB1"


def test_ambiguous_match_names_the_candidates(devices: list[UdevDevice]) -> None:
    with pytest.raises(BootError, match=r"ttyUSB1, /dev/ttyUSB2.*ID_PATH"):
        match(devices, [("ID_MODEL", "USB_Serial")])


def test_absent_adapter_lists_what_is_present(devices: list[UdevDevice]) -> None:
    with pytest.raises(BootError) as info:
        match(devices, [("ID_SERIAL_SHORT", "NOPE")])
    assert "no serial adapter matches udev ID_SERIAL_SHORT=NOPE" in str(info.value)
    assert "/dev/ttyUSB0 (ID_SERIAL_SHORT=A10KJ2F1" in str(info.value)

"""The physical section of board files: every form accepted, every mistake named by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_baremetal.boards import load_board
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.targets.physical.schema import parse

ROOT = Path(__file__).resolve().parents[1]
GOOD = {
    "console": {"udev": {"ID_SERIAL_SHORT": "A10KJ2F1"}, "baud": 115200},
    "power": {"lcus": {"udev": {"ID_PATH": "pci-0000:00:14.0-usb-0:3:1.0"}, "channel": 2}},
    "boot": {"pxe": {"tftp_root": "tftp/box", "subnet": "192.168.10.0", "interface": "eth1"}},
    "mac": "00:1B:21:AA:BB:CC",
}


def test_full_real_box_section(tmp_path: Path) -> None:
    spec = parse(GOOD, "box.yaml", tmp_path)
    assert spec.console.port.udev == (("ID_SERIAL_SHORT", "A10KJ2F1"),)
    assert spec.power.kind == "lcus" and spec.power.lcus is not None
    assert spec.power.lcus.channel == 2 and spec.power.lcus.port.baud == 9600
    assert spec.boot.pxe is not None and spec.boot.pxe.tftp_root == tmp_path / "tftp/box"
    assert spec.boot.pxe.server == "dnsmasq" and spec.mac == "00:1b:21:aa:bb:cc"


@pytest.mark.parametrize("power, kind", [
    ("manual", "manual"),
    ({"command": {"on": ["pdu", "on"], "off": ["pdu", "off"]}}, "command"),
    ({"labgrid": {"driver": "NetworkPowerDriver", "resource": "NetworkPowerPort",
                  "resource_args": {"model": "gude", "host": "pdu1", "index": 3}}}, "labgrid"),
])
def test_power_forms(tmp_path: Path, power: object, kind: str) -> None:
    assert parse({**GOOD, "power": power}, "b.yaml", tmp_path).power.kind == kind


@pytest.mark.parametrize("change, key, words", [
    ({"console": {}}, "physical.console", "no port given"),
    ({"console": {"device": "/dev/x", "rfc2217": "h:1"}}, "physical.console", "not device"),
    ({"console": {"udev": {"serial": "x"}}}, "physical.console.udev.serial", "upper case"),
    ({"console": {"rfc2217": "nohost"}}, "physical.console.rfc2217", "host:port"),
    ({"console": {"device": "/dev/x", "baud": "fast"}}, "physical.console.baud", "baud"),
    ({"power": {"lcus": {"device": "/dev/r", "channel": 9}}}, "physical.power.lcus.channel",
     "1..8"),
    ({"power": {"lcus": {"device": "/dev/r", "chanel": 1}}}, "physical.power.lcus.chanel",
     "unknown key"),
    ({"power": {"command": {"on": "pdu on", "off": ["x"]}}}, "physical.power.command.on",
     "list of strings"),
    ({"power": {"relay": 1}}, "physical.power.relay", "unknown key"),
    ({"boot": {"pxe": {"tftp_root": "t"}}}, "physical.boot.pxe.subnet", "proxy-DHCP"),
    ({"boot": {"pxe": {"tftp_root": "t", "server": "isc"}}}, "physical.boot.pxe.server",
     "dnsmasq, external"),
    ({"boot": {"disk": {"command": ["dd", "of=/dev/sdb"]}}}, "physical.boot.disk.command",
     "{image}"),
    ({"mac": "00:11:22"}, "physical.mac", "MAC address"),
    ({"off_wait": -1}, "physical.off_wait", "seconds"),
    ({"console": {"remote": "console"}}, "physical.console", "physical.place"),
    ({"colour": "red"}, "physical.colour", "unknown key"),
])
def test_errors_name_file_and_key(tmp_path: Path, change: dict[str, object], key: str,
                                  words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse({**GOOD, **change}, "box.yaml", tmp_path)
    assert info.value.file == "box.yaml" and info.value.key == key
    assert words in str(info.value)


def test_dnsmasq_pxe_needs_the_mac(tmp_path: Path) -> None:
    data = {k: v for k, v in GOOD.items() if k != "mac"}
    with pytest.raises(ConfigError, match=r"physical\.mac: PXE with server dnsmasq"):
        parse(data, "box.yaml", tmp_path)


def test_board_loader_validates_the_section(tmp_path: Path) -> None:
    path = tmp_path / "box.yaml"
    path.write_text("kind: physical\nphysical:\n  console: {device: /dev/ttyUSB0}\n"
                    "  power: manual\n  boot: {disk: {}, pxe: {tftp_root: x}}\n")
    with pytest.raises(ConfigError, match=r"box.yaml: physical.boot: give exactly one"):
        load_board(path)


@pytest.mark.parametrize("name", ["sim-skylake", "sim-skylake-remote", "examples/skylake-lab"])
def test_shipped_physical_boards_load(name: str) -> None:
    board = load_board(ROOT / "boards" / f"{name}.yaml")
    assert board.kind == "physical" and "avx2" in board.features

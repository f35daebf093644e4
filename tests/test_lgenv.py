"""`--lg-env`: a lab's labgrid environment file becomes boards, read with labgrid's own parser
(templates included), mapped onto the physical board schema and validated by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_baremetal.boards import load_board
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.targets.physical.lgenv import write_boards
from pytest_baremetal.targets.physical.schema import PhysicalSpec

pytest.importorskip("labgrid")

ENV = """\
targets:
  skylake-1:
    resources:
      USBSerialPort:
        match: {ID_SERIAL_SHORT: A10K9ZQ3}
        speed: 115200
      NetworkPowerPort: {model: gude, host: pdu.lab, index: 3}
    drivers:
      SerialDriver: {}
      NetworkPowerDriver: {delay: 2.0}
    options: {bm_write_to: /dev/disk/by-id/usb-stick}
  bench-pc:
    resources:
      - RawSerialPort: {port: !template '$BASE/ttyS9', speed: 57600}
    drivers:
      - ExternalPowerDriver: {cmd_on: 'relay on 2', cmd_off: 'relay off 2'}
"""


def test_targets_become_validated_boards(tmp_path: Path) -> None:
    env = tmp_path / "lab.yaml"
    env.write_text(ENV)
    folder = write_boards(env, tmp_path / "boards")
    sky = load_board(folder / "skylake-1.yaml")
    assert sky.kind == "physical" and isinstance(sky.spec, PhysicalSpec)
    assert sky.spec.console.port.udev == (("ID_SERIAL_SHORT", "A10K9ZQ3"),)
    assert sky.source["physical"]["console"] == {"udev": {"ID_SERIAL_SHORT": "A10K9ZQ3"},
                                                 "baud": 115200}
    assert sky.source["physical"]["power"]["labgrid"] == {
        "driver": "NetworkPowerDriver", "args": {"delay": 2.0},
        "resource": "NetworkPowerPort",
        "resource_args": {"model": "gude", "host": "pdu.lab", "index": 3}}
    assert sky.source["physical"]["boot"] == {"disk": {"write_to": "/dev/disk/by-id/usb-stick"}}
    bench = load_board(folder / "bench-pc.yaml")
    assert isinstance(bench.spec, PhysicalSpec)
    assert bench.source["physical"]["console"] == {"device": str(tmp_path / "ttyS9"), "baud": 57600}
    assert bench.source["physical"]["power"]["labgrid"]["driver"] == "ExternalPowerDriver"
    assert "resource" not in bench.source["physical"]["power"]["labgrid"]
    assert bench.source["physical"]["boot"] == "disk"


def test_a_target_without_a_console_is_named(tmp_path: Path) -> None:
    env = tmp_path / "lab.yaml"
    env.write_text("targets:\n  mute:\n    drivers: {ManualPowerDriver: {}}\n")
    with pytest.raises(ConfigError, match=r"targets\.mute.*no serial resource"):
        write_boards(env, tmp_path / "boards")


def test_lg_env_boards_are_selectable(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", lab=ENV)
    pytester.makepyfile("def test_x(board):\n    pass\n")
    result = pytester.runpytest_subprocess("--lg-env", "lab.yaml", "--target", "bench-pc",
                                           "--co", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*test_x?bench-pc?*"])

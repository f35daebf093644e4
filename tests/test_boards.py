"""Board files: the shipped boards load; every bad value gets a precise error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_baremetal.boards import (
    Board,
    board_paths,
    load_board,
    load_named,
    with_overrides,
)
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.targets.qemu.spec import QemuSpec, qemu_board, tcg_fallback

BOARDS = Path(__file__).resolve().parent.parent / "boards"
BASE = "kind: qemu\naccel: tcg\ncpu: max\n"


def write(tmp_path: Path, text: str, name: str = "b.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_board(write(tmp_path, text))
    return str(info.value)


def test_shipped_boards_load() -> None:
    names = board_paths([BOARDS])
    assert {"qemu-tcg", "qemu-tcg-noavx", "qemu-q35", "qemu-kvm", "qemu-whpx"} <= set(names)
    tcg = load_board(names["qemu-tcg"])
    assert (tcg.spec.accel, tcg.spec.cpu, tcg.spec.machine) == ("tcg", "Skylake-Client", "pc")
    assert {"avx", "avx2", "fma"} <= set(tcg.features)
    noavx = load_board(names["qemu-tcg-noavx"])
    assert noavx.spec.cpu == "qemu64" and "avx2" not in noavx.features
    assert load_board(names["qemu-q35"]).spec.machine == "q35"
    kvm = load_board(names["qemu-kvm"])
    assert (kvm.spec.accel, kvm.spec.cpu, kvm.spec.fallback_to_tcg) == ("kvm", "max", True)
    whpx = load_board(names["qemu-whpx"])
    assert (whpx.spec.accel, whpx.spec.fallback_to_tcg) == ("whpx", True)
    assert tcg.name == "qemu-tcg" and tcg.spec.firmware.auto
    assert tcg.spec.network is not None and tcg.spec.network.nic == "virtio-net-pci"
    assert "network" in tcg.features
    assert load_board(names["qemu-tcg-icount"]).spec.extra_args[0] == "-icount"


def test_shipped_boards_document_every_key() -> None:
    text = (BOARDS / "qemu-tcg.yaml").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for key in ("kind", "description", "accel", "cpu", "machine", "memory", "smp",
                "firmware", "extra_args", "features", "fallback", "network", "timeouts",
                "display"):
        assert f"#   {key}" in header, key


def test_full_board(tmp_path: Path) -> None:
    (tmp_path / "fw").mkdir()
    board = load_board(write(tmp_path, """
kind: qemu
description: everything
accel: kvm
cpu: Skylake-Client,+avx2
machine: q35
memory: 1.5G
smp: 2
firmware: {code: fw/CODE.fd, vars: /abs/VARS.fd}
extra_args: [-device, virtio-rng-pci]
features: [avx, network, avx]
fallback: tcg
network: {nic: virtio-net-pci, mode: user, options: {tftp: /srv/tftp, bootfile: boot.efi}}
timeouts: {firmware: 10, boot: 60.5}
display: true
"""))
    assert board.spec.memory == 1536 and board.spec.smp == 2 and board.spec.display
    assert board.spec.firmware.code == tmp_path / "fw/CODE.fd"
    assert board.spec.firmware.vars == Path("/abs/VARS.fd") and board.spec.firmware.split
    assert board.features == ("avx", "network")
    assert board.spec.network is not None and board.spec.network.nic == "virtio-net-pci"
    assert dict(board.spec.network.options) == {"tftp": "/srv/tftp", "bootfile": "boot.efi"}
    assert board.timeouts.boot == 60.5 and board.timeouts.run is None
    assert board.spec.extra_args == ("-device", "virtio-rng-pci")


@pytest.mark.parametrize(("memory", "mib"), [(4096, 4096), ("2G", 2048), ("512M", 512),
                                             ("512MiB", 512), ("4096", 4096), ("1g", 1024)])
def test_memory_forms(tmp_path: Path, memory: object, mib: int) -> None:
    assert load_board(write(tmp_path, BASE + f"memory: {memory}\n")).spec.memory == mib


@pytest.mark.parametrize(("text", "needles"), [
    (BASE + "memroy: 4096\n", ["b.yaml", "memroy", "did you mean 'memory'"]),
    (BASE + "acel: kvm\n", ["did you mean 'accel'"]),
    ("kind: qemu\naccel: kvmm\ncpu: max\n", ["accel", "'kvmm'", "did you mean 'kvm'",
                                              "tcg, kvm, whpx, hvf"]),
    (BASE + "machine: i440fx\n", ["machine", "'i440fx'", "pc, q35"]),
    (BASE + "memory: 64\n", ["memory", "64", "at least 128"]),
    (BASE + "memory: lots\n", ["memory", "'lots'", "2G"]),
    (BASE + "memory: true\n", ["memory", "True"]),
    (BASE + "smp: 0\n", ["smp", "0", ">= 1"]),
    (BASE + "smp: two\n", ["smp", "str", "'two'"]),
    (BASE + "features: [avx2, warp]\n", ["features", "'warp'", "avx, avx2, fma"]),
    (BASE + "features: avx2\n", ["features", "list of strings"]),
    (BASE + "firmware: [a]\n", ["firmware", "auto", "{unified: PATH}"]),
    (BASE + "firmware: {code: a}\n", ["firmware", "{code: PATH, vars: PATH}"]),
    (BASE + "network: {nic: ne2k}\n", ["network.nic", "'ne2k'", "e1000, virtio-net-pci"]),
    (BASE + "network: {nic: e1000, mode: tap}\n", ["network.mode", "'tap'", "user"]),
    (BASE + "network: {nic: e1000, tpye: x}\n", ["network.tpye"]),
    (BASE + "timeouts: {boot: -1}\n", ["timeouts.boot", "-1"]),
    (BASE + "timeouts: {bot: 5}\n", ["timeouts.bot", "did you mean 'boot'"]),
    (BASE + "display: yes please\n", ["display", "true or false"]),
    (BASE + "extra_args: [-s, 3]\n", ["extra_args", "list of strings"]),
    (BASE + "fallback: b\n", ["fallback", "'b' is not supported", "fallback: tcg",
                               "fallback: none"]),
    (BASE + "fallback: qemu-tcg\n", ["fallback", "another board file is not supported"]),
    (BASE + "fallback: tgc\n", ["fallback", "did you mean 'tcg'"]),
    (BASE + "fallback: [tcg]\n", ["fallback", "tcg, none"]),
    (BASE + "memory: " + "9" * 400 + "G\n", ["memory", "at most"]),
    (BASE + "memory: " + "9" * 400 + "\n", ["memory", "at most"]),
    (BASE + "smp: " + "9" * 400 + "\n", ["smp", "too large"]),
    (BASE + "timeouts: {boot: " + "9" * 400 + "}\n", ["timeouts.boot", "too long"]),
    (BASE + "cpu: 'max; rm -rf /'\n", ["cpu", "invalid CPU model"]),
    ("accel: tcg\ncpu: max\n", ["kind", "missing required key", "qemu, physical"]),
    ("kind: qemu\ncpu: max\n", ["accel", "missing required key"]),
    ("kind: vm\n", ["kind", "'vm'", "qemu, physical"]),
    ("kind: physical\nphysical: {}\naccel: kvm\n", ["accel", "does not apply to kind "
                                                    "physical"]),
    ("- a\n- b\n", ["b.yaml", "mapping", "list"]),
    (BASE + "memory: [\n", ["b.yaml", "YAML syntax error", "line "]),
])
def test_errors_name_file_key_value_and_allowed(tmp_path: Path, text: str,
                                                needles: list[str]) -> None:
    message = error_of(tmp_path, text)
    assert "b.yaml" in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_yaml_error_line_number(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE + "features: [avx\nmemory: 5\n  bad: indent\n")
    assert "line 4" in message or "line 5" in message or "line 6" in message


def test_board_paths_first_folder_wins(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write(a, BASE, "x.yaml")
    write(b, BASE, "x.yaml")
    write(b, BASE, "y.yml")
    write(b, "not a board", "notes.txt")
    paths = board_paths([a, b, tmp_path / "missing"])
    assert paths == {"x": a / "x.yaml", "y": b / "y.yml"}
    assert load_named("y", [a, b]).name == "y"
    with pytest.raises(ConfigError, match=r"no board file z\.yaml.*x, y"):
        load_named("z", [a, b])


def test_overrides(tmp_path: Path) -> None:
    board = load_board(write(tmp_path, BASE + "memory: 1G\ntimeouts: {run: 5}\n"))
    new = with_overrides(board, ["cpu=Skylake-Client", "memory=4096", "accel=kvm",
                                 "timeouts.boot=60", "display=true", "features=[avx2]",
                                 "network.nic=rtl8139"])
    assert (new.spec.cpu, new.spec.memory, new.spec.accel, new.spec.display) == (
        "Skylake-Client", 4096, "kvm",
                                                             True)
    assert new.timeouts.boot == 60 and new.timeouts.run == 5
    assert new.features == ("avx2",)
    assert new.spec.network is not None and new.spec.network.nic == "rtl8139"
    assert board.spec.memory == 1024 and board.spec.cpu == "max"   # the original is untouched
    assert with_overrides(board, ["memory=2G"]).spec.memory == 2048


@pytest.mark.parametrize(("option", "needles"), [
    ("memroy=4096", ["--bm-set memroy=4096", "did you mean 'memory'"]),
    ("accel=qemu", ["--bm-set accel=qemu", "accel", "tcg, kvm"]),
    ("memory=12", ["--bm-set memory=12", "at least 128"]),
    ("cpu", ["--bm-set cpu", "KEY=VALUE"]),
])
def test_override_errors_name_the_option(tmp_path: Path, option: str,
                                         needles: list[str]) -> None:
    board = load_board(write(tmp_path, BASE))
    with pytest.raises(ConfigError) as info:
        with_overrides(board, [option])
    for needle in needles:
        assert needle in str(info.value)


def test_fallback_accepts_only_what_works(tmp_path: Path) -> None:
    """Bug: any board name was accepted, and only tcg ever fell back."""
    assert load_board(write(tmp_path, BASE + "fallback: tcg\n")).spec.fallback_to_tcg
    assert not load_board(write(tmp_path, BASE + "fallback: none\n")).spec.fallback_to_tcg
    assert not load_board(write(tmp_path, BASE)).spec.fallback_to_tcg
    with pytest.raises(ConfigError, match="no-such-board"):
        load_board(write(tmp_path, BASE + "fallback: no-such-board\n"))


def test_huge_override_is_a_usage_error(tmp_path: Path) -> None:
    board = load_board(write(tmp_path, BASE))
    for option in ("memory=" + "9" * 400 + "G", "memory=" + "9" * 400, "smp=" + "9" * 400,
                   "timeouts.run=" + "9" * 400):
        with pytest.raises(ConfigError, match=re.escape(f"--bm-set {option[:20]}")):
            with_overrides(board, [option])


def test_overrides_on_board_built_in_code() -> None:
    board = Board(name="code", kind="qemu", spec=QemuSpec(cpu="qemu64"), features=("repl",))
    assert with_overrides(board, ["smp=2"]).spec.smp == 2
    assert with_overrides(board, ["smp=2"]).features == ("repl",)


def test_tcg_fallback() -> None:
    board = qemu_board("k", accel="kvm", cpu="host", fallback_to_tcg=True)
    fallen = tcg_fallback(board)
    assert (fallen.spec.accel, fallen.spec.cpu, fallen.spec.fallback_to_tcg) == \
        ("tcg", "max", False)
    assert tcg_fallback(qemu_board("k", accel="kvm", cpu="Skylake-Client")).spec.cpu == \
        "Skylake-Client"

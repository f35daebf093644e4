"""Board -> QEMU argv, as a pure function of its inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_baremetal.boards import Board
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.firmware import FirmwareFiles
from pytest_baremetal.targets.qemu.command import build, qemu_binary
from pytest_baremetal.targets.qemu.spec import Network, QemuSpec, qemu_board

UNIFIED = FirmwareFiles(unified=Path("/fw/OVMF.fd"))


def argv_of(board: Board[QemuSpec], tmp_path: Path, firmware: FirmwareFiles = UNIFIED,
            disk_bus: str = "ide") -> list[str]:
    return build(board, Path("/img/disk.img"), "/run/s.sock", ("127.0.0.1", 4444), tmp_path,
                 binary="qemu", firmware=firmware, disk_bus=disk_bus)



def value(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


def test_default_board(tmp_path: Path) -> None:
    board = qemu_board("t", accel="kvm", cpu="Skylake-Client", machine="q35", memory=2048,
                  smp=2)
    argv = argv_of(board, tmp_path)
    assert argv[0] == "qemu"
    assert value(argv, "-accel") == ["kvm"]
    assert value(argv, "-machine") == ["q35"]
    assert value(argv, "-cpu") == ["Skylake-Client"]
    assert value(argv, "-m") == ["2048"] and value(argv, "-smp") == ["2"]
    assert value(argv, "-bios") == ["/fw/OVMF.fd"]
    for flag in ("-S", "-no-reboot"):
        assert flag in argv
    assert value(argv, "-display") == ["none"] and value(argv, "-vga") == ["none"]
    assert value(argv, "-net") == ["none"] and value(argv, "-monitor") == ["none"]
    assert "-device" in argv and "ide-hd,drive=disk0,bootindex=0" in argv
    assert "file=/img/disk.img,format=raw,if=none,id=disk0,snapshot=on" in value(argv, "-drive")


def test_sockets_are_clients(tmp_path: Path) -> None:
    argv = argv_of(qemu_board("t"), tmp_path)
    chardevs = value(argv, "-chardev")
    assert "socket,id=serial0,path=/run/s.sock" in chardevs
    assert "socket,id=qmp0,host=127.0.0.1,port=4444" in chardevs
    assert not any("server" in c for c in chardevs)
    assert value(argv, "-serial") == ["chardev:serial0"]
    assert value(argv, "-mon") == ["chardev=qmp0,mode=control"]


def test_split_firmware_copies_vars_per_boot(tmp_path: Path) -> None:
    code, vars_ = tmp_path / "CODE.fd", tmp_path / "VARS.fd"
    code.write_bytes(b"c")
    vars_.write_bytes(b"v" * 8)
    work = tmp_path / "boot1"
    work.mkdir()
    argv = argv_of(qemu_board("t"), work, firmware=FirmwareFiles(code=code, vars=vars_))
    drives = value(argv, "-drive")
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={code}" in drives
    assert f"if=pflash,format=raw,unit=1,file={work / 'OVMF_VARS.fd'}" in drives
    assert (work / "OVMF_VARS.fd").read_bytes() == b"v" * 8
    assert "-bios" not in argv


def test_network_and_display(tmp_path: Path) -> None:
    board = qemu_board("t", display=True, network=Network(
        nic="virtio-net-pci", options=(("tftp", "/srv/tf,tp"), ("bootfile", "b.efi"))))
    argv = argv_of(board, tmp_path)
    assert "-net" not in argv and "-display" not in argv
    assert value(argv, "-netdev") == ["user,id=net0,tftp=/srv/tf,,tp,bootfile=b.efi"]
    assert "virtio-net-pci,netdev=net0,bootindex=1" in value(argv, "-device")


def test_extra_args_last_and_never_split(tmp_path: Path) -> None:
    board = qemu_board("t", extra_args=("-device", "virtio-rng-pci,id=a b"))
    argv = argv_of(board, tmp_path)
    assert argv[-2:] == ["-device", "virtio-rng-pci,id=a b"]


def test_commas_in_paths_are_escaped(tmp_path: Path) -> None:
    argv = build(qemu_board("t"), Path("/a,b/disk.img"), "/s,1.sock", "/q.sock", tmp_path,
                 firmware=UNIFIED, binary="qemu")
    assert "file=/a,,b/disk.img,format=raw,if=none,id=disk0,snapshot=on" in argv
    assert "socket,id=serial0,path=/s,,1.sock" in argv


def test_virtio_disk(tmp_path: Path) -> None:
    argv = argv_of(qemu_board("t"), tmp_path, disk_bus="virtio")
    assert "virtio-blk-pci,drive=disk0,bootindex=0" in argv
    with pytest.raises(ConfigError, match="disk bus 'scsi'"):
        argv_of(qemu_board("t"), tmp_path, disk_bus="scsi")


def test_qemu_binary(tmp_path: Path) -> None:
    fake = tmp_path / "qemu-system-x86_64"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert qemu_binary({"BM_QEMU": str(fake)}) == str(fake)
    assert qemu_binary({"PATH": str(tmp_path)}) == str(fake)
    with pytest.raises(ConfigError, match=r"(?s)QEMU not found.*apt-get install qemu-system-x86"):
        qemu_binary({"PATH": str(tmp_path / "empty")})
    with pytest.raises(ConfigError, match="BM_QEMU"):
        qemu_binary({"BM_QEMU": str(tmp_path / "nope")})

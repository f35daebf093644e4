"""Board -> QEMU argv (a list, never a shell string) and the QEMU binary finder."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from pytest_baremetal.boards import Board
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.firmware import FirmwareFiles, find_firmware
from pytest_baremetal.targets.qemu.spec import QemuSpec

Endpoint = str | Path | tuple[str, int] | int
"""A unix socket path, or a ``("127.0.0.1", port)`` TCP address the plugin listens on."""

QEMU_NAME = "qemu-system-x86_64"
DISK_BUSES = ("ide", "virtio")
VARS_COPY = "OVMF_VARS.fd"
QEMU_INSTALL_HINTS = (
    "Debian/Ubuntu: sudo apt-get install qemu-system-x86",
    "Fedora: sudo dnf install qemu-system-x86",
    "Arch: sudo pacman -S qemu-system-x86",
    "macOS: brew install qemu",
    "Windows: install QEMU from https://qemu.weilnetz.de/w64/",
    "or set BM_QEMU to the qemu-system-x86_64 executable",
)


def qemu_binary(env: Mapping[str, str] | None = None) -> str:
    """``BM_QEMU``, else ``qemu-system-x86_64`` on PATH, else QEMU's Windows install folder."""
    env = os.environ if env is None else env
    override = env.get("BM_QEMU")
    if override:
        if not Path(override).is_file():
            raise ConfigError("BM_QEMU", "BM_QEMU", f"{override} does not exist", value=override)
        return override
    found = shutil.which(QEMU_NAME, path=env.get("PATH"))
    if found:
        return found
    tried = [f"{QEMU_NAME} on PATH"]
    if sys.platform == "win32":
        for var in ("ProgramFiles", "ProgramW6432"):
            base = env.get(var)
            if base:
                exe = Path(base) / "qemu" / f"{QEMU_NAME}.exe"
                tried.append(str(exe))
                if exe.is_file():
                    return str(exe)
    raise ConfigError("qemu", "binary", "QEMU not found (tried " + ", ".join(tried)
                      + "); install it:\n  " + "\n  ".join(QEMU_INSTALL_HINTS))


def opt(value: str | Path) -> str:
    """Escape a value for a QEMU ``key=value,...`` option list (commas are doubled)."""
    return str(value).replace(",", ",,")


def chardev(ident: str, endpoint: Endpoint) -> str:
    """A client socket chardev connecting to the plugin's listener, or (an int) a connected
    socket QEMU inherits as that file descriptor."""
    if isinstance(endpoint, int):
        return f"socket,id={ident},fd={endpoint}"
    if isinstance(endpoint, tuple):
        host, port = endpoint
        return f"socket,id={ident},host={host},port={int(port)}"
    return f"socket,id={ident},path={opt(endpoint)}"


def firmware_args(firmware: FirmwareFiles, workdir: Path) -> list[str]:
    """``-bios`` for a unified image; CODE read-only pflash plus a fresh copy of VARS."""
    if firmware.unified is not None:
        return ["-bios", str(firmware.unified)]
    assert firmware.code is not None and firmware.vars is not None
    vars_copy = workdir / VARS_COPY
    shutil.copyfile(firmware.vars, vars_copy)
    return [
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={opt(firmware.code)}",
        "-drive", f"if=pflash,format=raw,unit=1,file={opt(vars_copy)}",
    ]


def network_args(board: Board[QemuSpec]) -> list[str]:
    if board.spec.network is None:
        return ["-net", "none"]
    netdev = "user,id=net0" + "".join(f",{k}={opt(v)}" for k, v in board.spec.network.options)
    return ["-netdev", netdev, "-device", f"{board.spec.network.nic},netdev=net0,bootindex=1"]


def disk_args(image: Path, bus: str) -> list[str]:
    if bus not in DISK_BUSES:
        raise ConfigError("disk", "bus", f"invalid disk bus {bus!r}", allowed=DISK_BUSES)
    device = "ide-hd" if bus == "ide" else "virtio-blk-pci"
    # snapshot=on: the image is opened read-only (writes go to a throwaway overlay), so
    # several QEMUs (xdist workers) can boot one cached image without a lock conflict.
    return ["-drive", f"file={opt(image)},format=raw,if=none,id=disk0,snapshot=on",
            "-device", f"{device},drive=disk0,bootindex=0"]


def build(
    board: Board[QemuSpec],
    image: Path | None,
    serial: Endpoint,
    qmp: Endpoint,
    workdir: Path,
    *,
    firmware: FirmwareFiles | None = None,
    binary: str | None = None,
    disk_bus: str = "ide",
) -> list[str]:
    """The argv that boots ``image`` on ``board``, paused (``-S``) until QMP ``cont``.
    (``image`` None boots the firmware alone, as ``doctor`` does.)

    QEMU connects to ``serial`` and ``qmp`` as a client. A split firmware's VARS is
    copied into ``workdir`` so every boot starts from clean variables.
    """
    spec = board.spec
    fw = firmware if firmware is not None else find_firmware(spec.firmware)
    argv = [
        binary or qemu_binary(),
        "-name", f"bm-{board.name}",
        "-nodefaults",
        "-accel", spec.accel,
        "-machine", spec.machine,
        "-cpu", spec.cpu,
        "-m", str(spec.memory),
        "-smp", str(spec.smp),
        *firmware_args(fw, workdir),
        *(disk_args(image, disk_bus) if image is not None else []),
        "-no-reboot",
        "-S",
        "-chardev", chardev("serial0", serial),
        "-serial", "chardev:serial0",
        "-chardev", chardev("qmp0", qmp),
        "-mon", "chardev=qmp0,mode=control",
        "-monitor", "none",
    ]
    argv += ["-vga", "std"] if spec.display else ["-display", "none", "-vga", "none"]
    argv += network_args(board)
    argv += spec.extra_args
    return argv

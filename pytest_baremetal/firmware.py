"""OVMF discovery: the board's own files, ``BM_OVMF``/``QEMU_FIRMWARE``, then the places
Debian, Ubuntu, Fedora, Arch, Homebrew and QEMU for Windows install it.

A unified ``OVMF.fd`` (``-bios``) boots faster than split CODE+VARS pflash, so it is
preferred unless the board names CODE and VARS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pytest_baremetal.errors import ConfigError
from pytest_baremetal.targets.qemu.spec import Firmware

# Relative to a filesystem root ("/" on Unix, the drive on Windows).
UNIFIED: tuple[str, ...] = (
    "usr/share/ovmf/OVMF.fd",              # Debian, Ubuntu
    "usr/share/qemu/OVMF.fd",              # Debian, Ubuntu (link)
    "usr/share/edk2/ovmf/OVMF.fd",         # older Fedora
    "usr/share/edk2/x64/OVMF.4m.fd",       # Arch
    "usr/share/edk2-ovmf/x64/OVMF.fd",     # older Arch
)
SPLIT: tuple[tuple[str, str], ...] = (
    ("usr/share/OVMF/OVMF_CODE_4M.fd", "usr/share/OVMF/OVMF_VARS_4M.fd"),   # Debian 12
    ("usr/share/OVMF/OVMF_CODE.fd", "usr/share/OVMF/OVMF_VARS.fd"),         # Debian/Ubuntu
    ("usr/share/edk2/ovmf/OVMF_CODE.fd", "usr/share/edk2/ovmf/OVMF_VARS.fd"),  # Fedora
    ("usr/share/edk2/x64/OVMF_CODE.4m.fd", "usr/share/edk2/x64/OVMF_VARS.4m.fd"),  # Arch
    ("usr/share/edk2-ovmf/x64/OVMF_CODE.fd", "usr/share/edk2-ovmf/x64/OVMF_VARS.fd"),
    ("opt/homebrew/share/qemu/edk2-x86_64-code.fd",
     "opt/homebrew/share/qemu/edk2-i386-vars.fd"),                          # Homebrew arm64
    ("usr/local/share/qemu/edk2-x86_64-code.fd",
     "usr/local/share/qemu/edk2-i386-vars.fd"),                             # Homebrew x86
    ("Program Files/qemu/share/edk2-x86_64-code.fd",
     "Program Files/qemu/share/edk2-i386-vars.fd"),                         # QEMU for Windows
)
# File names looked for inside a QEMU_FIRMWARE folder, best first.
DIR_UNIFIED = ("OVMF.fd", "OVMF.4m.fd")
DIR_SPLIT = (("OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd"), ("OVMF_CODE.4m.fd", "OVMF_VARS.4m.fd"),
             ("OVMF_CODE.fd", "OVMF_VARS.fd"), ("edk2-x86_64-code.fd", "edk2-i386-vars.fd"))

INSTALL_HINTS = (
    "Debian/Ubuntu: sudo apt-get install ovmf",
    "Fedora: sudo dnf install edk2-ovmf",
    "Arch: sudo pacman -S edk2-ovmf",
    "macOS: brew install qemu",
    "Windows: install QEMU from https://qemu.weilnetz.de/w64/ (share\\edk2-x86_64-code.fd)",
    "or point BM_OVMF at a unified OVMF.fd, or at CODE and VARS joined by "
    f"{os.pathsep!r}",
)


@dataclass(frozen=True)
class FirmwareFiles:
    """Resolved firmware: a unified image, or CODE plus the VARS template to copy per boot."""

    unified: Path | None = None
    code: Path | None = None
    vars: Path | None = None

    @property
    def split(self) -> bool:
        return self.code is not None

    def describe(self) -> str:
        return str(self.unified) if self.unified else f"{self.code} + {self.vars}"


def default_roots() -> list[Path]:
    """Filesystem roots the standard locations are relative to."""
    if sys.platform == "win32":
        drive = Path(os.environ.get("SYSTEMDRIVE", "C:") + "\\")
        return [drive]
    return [Path("/")]


def find_firmware(
    board: Firmware | None = None,
    *,
    prefer_split: bool = False,
    roots: Sequence[Path] | None = None,
    env: Mapping[str, str] | None = None,
) -> FirmwareFiles:
    """The firmware to boot with, or :class:`ConfigError` listing every path tried."""
    env = os.environ if env is None else env
    if board is not None and not board.auto:
        return _explicit(board)
    tried: list[str] = []
    found = _from_env(env, tried)
    if found is not None:
        return found
    unified: list[FirmwareFiles] = []
    split: list[FirmwareFiles] = []
    folder = env.get("QEMU_FIRMWARE")
    if folder:
        _scan_dir(Path(folder), unified, split, tried)
    for root in default_roots() if roots is None else roots:
        _scan_root(root, unified, split, tried)
    ordered = split + unified if prefer_split else unified + split
    if ordered:
        return ordered[0]
    lines = ["no OVMF (UEFI firmware for QEMU) found; tried:"]
    lines += [f"  {path}" for path in tried]
    lines.append("install it:")
    lines += [f"  {hint}" for hint in INSTALL_HINTS]
    raise ConfigError("firmware", "auto", "\n".join(lines))


def _explicit(board: Firmware) -> FirmwareFiles:
    files = (FirmwareFiles(unified=board.unified) if board.unified
             else FirmwareFiles(code=board.code, vars=board.vars))
    for key, path in (("unified", files.unified), ("code", files.code), ("vars", files.vars)):
        if path is not None and not path.is_file():
            raise ConfigError("firmware", key, f"firmware file {path} does not exist "
                              "(set firmware: auto to search the usual places)", value=path)
    return files


def _from_env(env: Mapping[str, str], tried: list[str]) -> FirmwareFiles | None:
    value = env.get("BM_OVMF")
    if not value:
        return None
    parts = value.split(os.pathsep)
    if len(parts) == 1:
        files = FirmwareFiles(unified=Path(parts[0]))
    elif len(parts) == 2:
        files = FirmwareFiles(code=Path(parts[0]), vars=Path(parts[1]))
    else:
        raise ConfigError("BM_OVMF", "BM_OVMF", f"expected one file or CODE{os.pathsep}VARS, "
                          f"got {value!r}")
    for path in (files.unified, files.code, files.vars):
        if path is not None and not path.is_file():
            raise ConfigError("BM_OVMF", "BM_OVMF", f"{path} does not exist", value=value)
    tried.append(f"BM_OVMF={value}")
    return files


def _scan_dir(folder: Path, unified: list[FirmwareFiles], split: list[FirmwareFiles],
              tried: list[str]) -> None:
    for name in DIR_UNIFIED:
        _add_unified(folder / name, unified, tried)
    for code, vars_ in DIR_SPLIT:
        _add_split(folder / code, folder / vars_, split, tried)


def _scan_root(root: Path, unified: list[FirmwareFiles], split: list[FirmwareFiles],
               tried: list[str]) -> None:
    for rel in UNIFIED:
        _add_unified(root.joinpath(*PurePosixPath(rel).parts), unified, tried)
    for code, vars_ in SPLIT:
        _add_split(root.joinpath(*PurePosixPath(code).parts),
                   root.joinpath(*PurePosixPath(vars_).parts), split, tried)


def _add_unified(path: Path, out: list[FirmwareFiles], tried: list[str]) -> None:
    tried.append(str(path))
    if path.is_file():
        out.append(FirmwareFiles(unified=path))


def _add_split(code: Path, vars_: Path, out: list[FirmwareFiles], tried: list[str]) -> None:
    tried.append(f"{code} + {vars_}")
    if code.is_file() and vars_.is_file():
        out.append(FirmwareFiles(code=code, vars=vars_))

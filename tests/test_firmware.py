"""OVMF discovery over fake install trees, and once over this host's real install."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_baremetal.errors import ConfigError
from pytest_baremetal.firmware import find_firmware
from pytest_baremetal.targets.qemu.spec import Firmware


def touch(root: Path, *rels: str) -> None:
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 16)


DEBIAN = ("usr/share/OVMF/OVMF_CODE_4M.fd", "usr/share/OVMF/OVMF_VARS_4M.fd",
          "usr/share/ovmf/OVMF.fd", "usr/share/qemu/OVMF.fd")


@pytest.mark.parametrize(("files", "unified", "code", "vars_"), [
    (DEBIAN, "usr/share/ovmf/OVMF.fd", None, None),
    (DEBIAN[:2], None, "usr/share/OVMF/OVMF_CODE_4M.fd", "usr/share/OVMF/OVMF_VARS_4M.fd"),
    (("usr/share/OVMF/OVMF_CODE.fd", "usr/share/OVMF/OVMF_VARS.fd"), None,
     "usr/share/OVMF/OVMF_CODE.fd", "usr/share/OVMF/OVMF_VARS.fd"),
    (("usr/share/edk2/ovmf/OVMF_CODE.fd", "usr/share/edk2/ovmf/OVMF_VARS.fd"), None,
     "usr/share/edk2/ovmf/OVMF_CODE.fd", "usr/share/edk2/ovmf/OVMF_VARS.fd"),      # Fedora
    (("usr/share/edk2/x64/OVMF_CODE.4m.fd", "usr/share/edk2/x64/OVMF_VARS.4m.fd",
      "usr/share/edk2/x64/OVMF.4m.fd"), "usr/share/edk2/x64/OVMF.4m.fd", None, None),  # Arch
    (("opt/homebrew/share/qemu/edk2-x86_64-code.fd",
      "opt/homebrew/share/qemu/edk2-i386-vars.fd"), None,
     "opt/homebrew/share/qemu/edk2-x86_64-code.fd", "opt/homebrew/share/qemu/edk2-i386-vars.fd"),
    (("usr/local/share/qemu/edk2-x86_64-code.fd", "usr/local/share/qemu/edk2-i386-vars.fd"),
     None, "usr/local/share/qemu/edk2-x86_64-code.fd",
     "usr/local/share/qemu/edk2-i386-vars.fd"),
    (("Program Files/qemu/share/edk2-x86_64-code.fd",
      "Program Files/qemu/share/edk2-i386-vars.fd"), None,
     "Program Files/qemu/share/edk2-x86_64-code.fd",
     "Program Files/qemu/share/edk2-i386-vars.fd"),                                # Windows
])
def test_distribution_layouts(tmp_path: Path, files: tuple[str, ...], unified: str | None,
                              code: str | None, vars_: str | None) -> None:
    touch(tmp_path, *files)
    found = find_firmware(roots=[tmp_path], env={})
    assert found.unified == (tmp_path / unified if unified else None)
    assert found.code == (tmp_path / code if code else None)
    assert found.vars == (tmp_path / vars_ if vars_ else None)


def test_split_half_is_not_enough(tmp_path: Path) -> None:
    touch(tmp_path, "usr/share/OVMF/OVMF_CODE_4M.fd")      # VARS missing
    with pytest.raises(ConfigError):
        find_firmware(roots=[tmp_path], env={})


def test_prefer_split(tmp_path: Path) -> None:
    touch(tmp_path, *DEBIAN)
    assert find_firmware(roots=[tmp_path], env={}, prefer_split=True).split


def test_env_bm_ovmf_wins(tmp_path: Path) -> None:
    touch(tmp_path, *DEBIAN, "mine/OVMF.fd", "mine/C.fd", "mine/V.fd")
    env = {"BM_OVMF": str(tmp_path / "mine/OVMF.fd")}
    assert find_firmware(roots=[tmp_path], env=env).unified == tmp_path / "mine/OVMF.fd"
    env = {"BM_OVMF": f"{tmp_path / 'mine/C.fd'}{os.pathsep}{tmp_path / 'mine/V.fd'}"}
    found = find_firmware(roots=[tmp_path], env=env)
    assert (found.code, found.vars) == (tmp_path / "mine/C.fd", tmp_path / "mine/V.fd")
    with pytest.raises(ConfigError, match=r"BM_OVMF.*nope\.fd does not exist"):
        find_firmware(roots=[tmp_path], env={"BM_OVMF": str(tmp_path / "nope.fd")})


def test_env_qemu_firmware_folder(tmp_path: Path) -> None:
    touch(tmp_path, "share/edk2-x86_64-code.fd", "share/edk2-i386-vars.fd")
    found = find_firmware(roots=[tmp_path / "empty"], env={"QEMU_FIRMWARE":
                                                            str(tmp_path / "share")})
    assert found.code == tmp_path / "share/edk2-x86_64-code.fd"


def test_not_found_lists_paths_and_install_commands(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        find_firmware(roots=[tmp_path], env={})
    message = str(info.value)
    assert str(tmp_path / "usr/share/ovmf/OVMF.fd") in message
    assert str(tmp_path / "usr/share/edk2/ovmf/OVMF_CODE.fd") in message
    for hint in ("apt-get install ovmf", "dnf install edk2-ovmf", "pacman -S edk2-ovmf",
                 "brew install qemu", "BM_OVMF"):
        assert hint in message


def test_board_explicit_files(tmp_path: Path) -> None:
    touch(tmp_path, "C.fd", "V.fd")
    board = Firmware(code=tmp_path / "C.fd", vars=tmp_path / "V.fd")
    assert find_firmware(board, roots=[], env={}).split
    with pytest.raises(ConfigError, match=r"firmware: unified: .*missing\.fd does not exist"):
        find_firmware(Firmware(unified=tmp_path / "missing.fd"), roots=[], env={})


@pytest.mark.skipif(not Path("/usr/share/OVMF/OVMF_CODE_4M.fd").is_file(),
                    reason="Debian's ovmf package is not installed")
def test_real_debian_install() -> None:
    found = find_firmware(env={})
    assert found.unified is not None and found.unified.is_file()
    split = find_firmware(env={}, prefer_split=True)
    assert split.code == Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
    assert split.vars == Path("/usr/share/OVMF/OVMF_VARS_4M.fd")

"""Targets: how a board is powered on and its console reached (QEMU, physical)."""

from __future__ import annotations

from pathlib import Path

from pytest_baremetal.boards import Board
from pytest_baremetal.dut import Dut
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import Profile


def boot_board(board: Board, config: GuestConfig, image: Path, log_dir: Path,
               profile: Profile, build: object, *, allow_fallback: bool = True) -> Dut:
    """Powers the board on with this disk image and returns the running Dut."""
    if board.kind == "qemu":
        from pytest_baremetal.targets.qemu import boot_qemu

        return boot_qemu(board, config, image, log_dir, profile, build,
                         allow_fallback=allow_fallback)
    if board.kind == "physical":
        try:
            from pytest_baremetal.physical.target import boot_physical
        except ImportError as error:  # pyserial-labgrid / labgrid missing, or not Linux
            raise ConfigError(f"{board.path}: physical boards need the lab extra (Linux "
                              f"only): pip install 'pytest-baremetal[lab]' ({error})") from error

        return boot_physical(board, config, image, log_dir, profile, build)
    raise ConfigError(f"{board.path}: board kind {board.kind!r} cannot boot")

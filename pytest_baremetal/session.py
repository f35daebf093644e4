"""One pytest run's bare-metal state: boards, the build under test, its profile, boots."""

from __future__ import annotations

import contextlib
import os
import time
from functools import cached_property
from pathlib import Path

from pytest_baremetal import boards as boards_mod
from pytest_baremetal.boards import Board
from pytest_baremetal.build_under_test import BuildUnderTest, reference_guest
from pytest_baremetal.dut import Dut
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import Profile, load_profile
from pytest_baremetal.perf_tracking import PerfTracker
from pytest_baremetal.pool import BootPool
from pytest_baremetal.settings import Settings
from pytest_baremetal.targets import boot_board

REFERENCE_PROFILE = Path(__file__).parent / "profiles" / "reference.yaml"


class BaremetalSession:
    """Lazily resolves what the options name; nothing boots until a test asks."""

    def __init__(self, settings: Settings, worker: str = "main") -> None:
        self.settings = settings
        self.worker = worker
        self._boards: dict[str, Board] = {}
        self.pool = BootPool(self._boot)
        self._boot_serial = 0
        self.perf: PerfTracker | None = None

    # -- boards -----------------------------------------------------------------------------
    @cached_property
    def board_paths(self) -> dict[str, Path]:
        return boards_mod.board_paths(self.settings.board_dirs)

    @cached_property
    def target_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for target in self.settings.targets:
            for name in (sorted(self.board_paths) if target == "all" else [target]):
                if name not in self.board_paths:
                    known = ", ".join(sorted(self.board_paths)) or "none"
                    dirs = ", ".join(str(d) for d in self.settings.board_dirs)
                    raise ConfigError(f"--target {name}: no board file {name}.yaml in {dirs} "
                                      f"(boards: {known})")
                if name not in names:
                    names.append(name)
        return tuple(names)

    def board(self, name: str) -> Board:
        if name not in self._boards:
            board = boards_mod.load_board(self.board_paths[name])
            overrides = list(self.settings.overrides)
            if self.settings.display:
                overrides.append("display=true")
            if overrides:
                board = boards_mod.with_overrides(board, overrides)
            self._boards[name] = board
        return self._boards[name]

    # -- the build and its vocabulary ---------------------------------------------------
    @cached_property
    def profile(self) -> Profile:
        return load_profile(self.settings.profile or REFERENCE_PROFILE)

    @property
    def is_reference_guest(self) -> bool:
        return self.settings.efi is None and self.settings.image is None

    @cached_property
    def build(self) -> BuildUnderTest:
        s = self.settings
        if s.image is not None:
            return BuildUnderTest(image=s.image)
        if s.efi is not None:
            return BuildUnderTest(efi=s.efi, files=dict(s.efi_files),
                                  config_file=self.profile.config_file)
        return reference_guest(s.root, s.model_dir)

    def guest_config(self, values: dict[str, object], where: str) -> GuestConfig:
        merged = {**values, **dict(self.settings.guest_settings)}
        config = GuestConfig.of(merged, where)  # type: ignore[arg-type]
        if config.items and self.profile.config_keys:
            config.check_keys(self.profile.config_keys, where)
        return config

    # -- boots ----------------------------------------------------------------------------
    @cached_property
    def run_log_dir(self) -> Path:
        """This run's folder of boot logs; `latest` points at the newest run."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        suffix = "" if self.worker == "main" else f"-{self.worker}"
        folder = self.settings.log_dir / f"{stamp}-{os.getpid()}{suffix}"
        folder.mkdir(parents=True, exist_ok=True)
        latest = self.settings.log_dir / "latest"
        with contextlib.suppress(OSError):
            if latest.is_symlink() or not latest.exists():
                latest.unlink(missing_ok=True)
                latest.symlink_to(folder.name)
        return folder

    def _boot(self, board_name: str, config: GuestConfig) -> Dut:
        self._boot_serial += 1
        board = self.board(board_name)
        cache = self.settings.log_dir.parent / ".images"
        image = self.build.disk_for(config, cache)
        log_dir = self.run_log_dir / f"{self._boot_serial:03d}-{board.name}"
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "guest-config.txt").write_text(config.render())
        return boot_board(board, config, image, log_dir, self.profile, self.build,
                          allow_fallback=not self.settings.no_fallback)

    def close(self) -> None:
        self.pool.close()


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")

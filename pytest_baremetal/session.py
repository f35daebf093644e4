"""One pytest run's bare-metal state: boards, the build under test, its profile, boots."""

from __future__ import annotations

import contextlib
import os
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_baremetal import boards as boards_mod
from pytest_baremetal import targets
from pytest_baremetal.boards import Board
from pytest_baremetal.build_under_test import BuildUnderTest, reference_guest
from pytest_baremetal.bus import BootPhase, EventBus
from pytest_baremetal.dut import Dut
from pytest_baremetal.errors import BaremetalError, ConfigError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import Profile, load_profile
from pytest_baremetal.pool import BootPool
from pytest_baremetal.settings import Settings
from pytest_baremetal.targets import BootRequest, Target, TargetOptions

if TYPE_CHECKING:
    from pytest_baremetal.perf_tracking import PerfTracker

REFERENCE_PROFILE = Path(__file__).parent / "profiles" / "reference.yaml"


class BaremetalSession:
    """Lazily resolves what the options name; nothing boots until a test asks."""

    def __init__(self, settings: Settings, worker: str = "main") -> None:
        self.settings = settings
        self.worker = worker
        self._boards: dict[str, Board[Any]] = {}
        self._targets: dict[str, Target] = {}
        self.pool = BootPool(self._boot)
        self._boot_serial = 0
        self.perf: PerfTracker | None = None
        #: every boot phase, wait, metric and attachment of the run (reporters subscribe)
        self.bus = EventBus()

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
                                      f"(boards: {known}); add your folder of boards with "
                                      "--bm-boards DIR or bm_boards in pytest.ini")
                if name not in names:
                    names.append(name)
        return tuple(names)

    def board(self, name: str) -> Board[Any]:
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
        return reference_guest(model_dir=s.model_dir)

    def check_build_options(self) -> None:
        """--bm-efi/--bm-image/--bm-file/--bm-guest as a whole: ConfigError before any test
        (the reference guest is not built here: collecting must stay cheap)."""
        s = self.settings
        for option, path in (("--bm-efi", s.efi), ("--bm-image", s.image)):
            if path is not None and not path.is_file():
                raise ConfigError(f"{option}: {path} does not exist; build it or fix the path")
        if s.model_dir is not None and not s.model_dir.is_dir():
            raise ConfigError(f"--bm-model-dir: {s.model_dir} is not a folder (it should hold "
                              "model.bin and tokenizer.bin)")
        if s.profile is not None:
            _ = self.profile  # a bad profile file: named once, not per test
        for name, path in s.efi_files.items():
            if not path.is_file():
                raise ConfigError(f"--bm-file {name}={path}: {path} does not exist")
        if s.image is not None or s.efi is not None:
            _ = self.build
        if s.image is not None and s.guest_settings:
            raise ConfigError(f"--bm-guest {' '.join(f'{k}={v}' for k, v in s.guest_settings)}:"
                              f" a ready disk image ({s.image}) cannot take guest settings; "
                              "use --bm-efi with the profile's config file instead")
        if s.guest_settings:
            self.guest_config({}, "--bm-guest")

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

    def target(self, name: str) -> Target:
        """The target of board ``name`` (made by its kind, once per run)."""
        if name not in self._targets:
            options = TargetOptions(allow_fallback=not self.settings.no_fallback)
            self._targets[name] = targets.target_for(self.board(name), options)
        return self._targets[name]

    def _boot(self, board_name: str, config: GuestConfig) -> Dut:
        """Boots once, and again (up to ``--bm-boot-retries``) when the lab was at fault."""
        retried: list[str] = []
        while True:
            try:
                dut = self._boot_once(board_name, config)
            except BaremetalError as error:
                if not error.retryable or len(retried) >= self.settings.boot_retries:
                    error.retried = tuple(retried)
                    raise
                reason = f"{type(error).__name__}: {str(error).splitlines()[0]}"
                retried.append(reason)
                self.bus.publish(BootPhase(board_name, "boot failed (lab fault), retrying",
                                           0.0, reason))
                continue
            dut.info.retries.extend(retried)
            return dut

    def _boot_once(self, board_name: str, config: GuestConfig) -> Dut:
        self._boot_serial += 1
        board = self.board(board_name)
        cache = self.settings.log_dir.parent / ".images"
        image = self.build.disk_for(config, cache)
        log_dir = self.run_log_dir / f"{self._boot_serial:03d}-{board.name}"
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "guest-config.txt").write_text(config.render())
        request = BootRequest(config, image, log_dir, self.profile, self.build, self.bus)
        return self.target(board_name).boot(request)

    def facts(self) -> dict[str, str]:
        """What the targets learned about the environment (QEMU version, firmware)."""
        found: dict[str, str] = {}
        for target in self._targets.values():
            for key, value in target.facts().items():
                if value not in found.get(key, "").split("; "):
                    found[key] = f"{found[key]}; {value}" if key in found else value
        return found

    def close(self) -> None:
        try:
            self.pool.close()
        finally:
            for target in self._targets.values():
                target.close()


def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")

"""Command-line options and ini keys, turned into one validated Settings object."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_baremetal import resources
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.guestconfig import KEY, render_value

DUT_SCOPES = ("session", "function")
_ESP_NAME = re.compile(r"[A-Za-z0-9_.+ ~()/\\-]{1,200}")


@dataclass(frozen=True)
class Settings:
    root: Path
    targets: tuple[str, ...]
    board_dirs: tuple[Path, ...]
    overrides: tuple[str, ...] = ()
    guest_settings: tuple[tuple[str, str], ...] = ()
    efi: Path | None = None
    efi_files: dict[str, Path] = field(default_factory=dict)
    image: Path | None = None
    profile: Path | None = None
    model_dir: Path | None = None
    no_fallback: bool = False
    dut_scope: str = "session"
    display: bool = False
    log_dir: Path = Path("reports/logs")
    history: str | None = None
    baseline: str | None = None
    update_baseline: bool = False
    release: str | None = None
    #: how often a boot that failed for a reason of the lab's is tried again
    boot_retries: int = 1
    #: stream the cleaned console of every boot to the terminal
    console: bool = False


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("baremetal", "bare-metal targets (pytest-baremetal)")
    group.addoption("--bm-target", action="append", default=[], metavar="BOARD",
                    dest="bm_target", help="board to run on (repeatable; 'all' for every "
                    "board). Also --target, unless another plugin owns that name.")
    group.addoption("--bm-boards", action="append", default=[], metavar="DIR",
                    help="extra folder of board YAML files (repeatable).")
    group.addoption("--bm-set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a board setting for this run, e.g. --bm-set cpu=max.")
    group.addoption("--bm-guest", action="append", default=[], metavar="KEY=VALUE",
                    help="guest configuration for every boot of this run (wins over "
                    "bm_config markers), e.g. --bm-guest repeats=5 --bm-guest slowdown_pct=10.")
    group.addoption("--bm-efi", metavar="PATH", help="boot this EFI application instead "
                    "of the reference guest.")
    group.addoption("--bm-file", action="append", default=[], metavar="NAME=PATH",
                    help="file to place beside --bm-efi on the EFI partition (repeatable).")
    group.addoption("--bm-image", metavar="PATH", help="boot this ready disk image.")
    group.addoption("--bm-profile", metavar="FILE", help="marker profile (YAML) of the "
                    "build under test.")
    group.addoption("--bm-model-dir", metavar="DIR", help="folder with model.bin and "
                    "tokenizer.bin for the reference guest.")
    group.addoption("--bm-no-fallback", action="store_true", help="fail instead of falling "
                    "back to TCG when the board's accelerator cannot run the guest.")
    group.addoption("--bm-dut-scope", choices=DUT_SCOPES, default=None,
                    help="share one boot per board and guest configuration (session, the "
                    "default) or boot for every test (function).")
    group.addoption("--bm-boot-retries", type=int, default=1, metavar="N",
                    help="boot again up to N times when a boot fails for a reason of the "
                    "lab's (relay, console, QMP, PXE, accelerator); guest faults are never "
                    "retried (default 1).")
    group.addoption("--bm-console", action="store_true",
                    help="stream each boot's cleaned console live to the terminal.")
    group.addoption("--bm-display", action="store_true",
                    help="show the guest's screen in a window.")
    group.addoption("--bm-logs", metavar="DIR", help="where console logs go "
                    "(default reports/logs).")
    group.addoption("--bm-history", metavar="URL", help="performance history: an SQLite "
                    "path or a postgresql:// URL (default reports/history.sqlite).")
    group.addoption("--bm-baseline", metavar="POLICY", default=None,
                    help="what tok/s is compared with: last-pass, median:N (default median:9) "
                    "or release:NAME.")
    group.addoption("--bm-update-baseline", action="store_true",
                    help="record this run as passing even if it regressed.")
    group.addoption("--bm-release", metavar="NAME",
                    help="name this run as a release baseline.")

    parser.addini("bm_targets", "default boards when --target is not given", type="args")
    parser.addini("bm_boards", "folders of board files (relative to the ini file)",
                  type="args")
    parser.addini("bm_efi", "EFI application to boot instead of the reference guest")
    parser.addini("bm_files", "NAME=PATH files beside bm_efi", type="args")
    parser.addini("bm_image", "ready disk image to boot")
    parser.addini("bm_profile", "marker profile of the build under test")
    parser.addini("bm_dut_scope", "session or function", default="session")


def add_target_option(parser: pytest.Parser) -> str | None:
    """Adds ``--target`` (same as ``--bm-target``) unless another plugin owns it.

    Called once every plugin and initial conftest has added its options, so the name is
    taken only when free, whatever order plugins load in. Returns the owner's group name
    when the name was taken by someone else, else None.
    """
    for group in [*parser._groups, parser._anonymous]:  # no public way to list options
        for option in group.options:
            if "--target" in option.names():
                return None if option.dest == "bm_target" else (group.name or "another plugin")
    parser.getgroup("baremetal").addoption(
        "--target", action="append", default=[], metavar="BOARD", dest="bm_target",
        help="board to run on (repeatable; 'all' for every board); same as --bm-target.")
    return None


def project_dir(config: pytest.Config) -> Path:
    """The folder paths resolve from: the ini file's, else where pytest was invoked.

    Never pytest's rootdir, which moves with the command-line arguments it takes for paths.
    """
    if config.inipath is not None:
        return Path(config.inipath).parent
    return Path(config.invocation_params.dir)


def _path(config: pytest.Config, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(config.invocation_params.dir) / path


def _ini_path(config: pytest.Config, value: Any) -> Path | None:
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else project_dir(config) / path


def _named_files(items: list[str], where: str, resolve: Any) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{where} {item!r}: expected NAME=PATH, e.g. model.bin=out/m.bin")
        parts = name.replace("\\", "/").split("/")
        if not _ESP_NAME.fullmatch(name) or any(p in ("", ".", "..") for p in parts):
            raise ConfigError(f"{where} {item!r}: the name {name!r} on the EFI partition may "
                              "hold letters, digits, space and _ . + - ~ ( ), with / between "
                              "folders (no '..')")
        if "\0" in value:
            raise ConfigError(f"{where} {item!r}: the path holds a NUL character")
        files[name] = resolve(value)
    return files


def _guest_setting(item: str) -> tuple[str, str]:
    """``--bm-guest KEY=VALUE``: a key the guest's file format allows, a one-line value."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--bm-guest {item!r}: expected KEY=VALUE, e.g. repeats=5")
    if not KEY.fullmatch(key):
        raise ConfigError(f"--bm-guest {item!r}: the key {key!r} must be 1 to 64 of a-z, 0-9 "
                          "and _ (e.g. repeats=5)")
    try:
        render_value(value)
    except ConfigError as error:
        raise ConfigError(f"--bm-guest {item!r}: {error}") from None
    return key, value


def from_config(config: pytest.Config) -> Settings:
    opt = config.getoption
    root = project_dir(config)
    targets = tuple(opt("bm_target") or config.getini("bm_targets") or ())
    # Earlier folders win: the command line, the ini file, the project's boards/, then the
    # boards that ship with the plugin.
    board_dirs = [_path(config, d) for d in opt("--bm-boards")]
    board_dirs += [_ini_path(config, p) for p in config.getini("bm_boards")]
    board_dirs.append(root / "boards")
    lg_env = config.getoption("lg_env", None)  # labgrid's own option (its pytest plugin)
    if lg_env:
        from pytest_baremetal.targets.physical.lgenv import write_boards

        env_file = _path(config, str(lg_env))
        assert env_file is not None
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # xdist workers write apart
        board_dirs.append(write_boards(env_file, root / "reports" / ".lg-boards" / worker))
    board_dirs.append(resources.packaged_boards())
    cli_files = _named_files(opt("--bm-file"), "--bm-file", lambda v: _path(config, v))
    ini_files = _named_files(config.getini("bm_files"), "ini bm_files",
                             lambda v: _ini_path(config, v))
    efi = _path(config, opt("--bm-efi")) or _ini_path(config, config.getini("bm_efi"))
    image = _path(config, opt("--bm-image")) or _ini_path(config, config.getini("bm_image"))
    if efi and image:
        raise ConfigError("--bm-efi and --bm-image both given: boot either an EFI "
                          "application or a ready disk image")
    if (cli_files or ini_files) and not efi:
        raise ConfigError("--bm-file places files beside --bm-efi; give --bm-efi too")
    guest_settings = [_guest_setting(item) for item in opt("--bm-guest")]
    scope = opt("--bm-dut-scope") or config.getini("bm_dut_scope") or "session"
    if scope not in DUT_SCOPES:
        raise ConfigError(f"bm_dut_scope = {scope!r}: use one of {', '.join(DUT_SCOPES)}")
    retries = opt("--bm-boot-retries")
    if not 0 <= retries <= 10:
        raise ConfigError(f"--bm-boot-retries {retries}: use 0 to 10")
    profile = _path(config, opt("--bm-profile")) or _ini_path(config,
                                                               config.getini("bm_profile"))
    return Settings(
        root=root,
        targets=targets,
        board_dirs=tuple(d for d in board_dirs if d is not None),
        overrides=tuple(opt("--bm-set")),
        guest_settings=tuple(guest_settings),
        efi=efi,
        efi_files={**ini_files, **cli_files},
        image=image,
        profile=profile,
        model_dir=_path(config, opt("--bm-model-dir")),
        no_fallback=bool(opt("--bm-no-fallback")),
        dut_scope=scope,
        display=bool(opt("--bm-display")),
        log_dir=_path(config, opt("--bm-logs")) or root / "reports" / "logs",
        history=opt("--bm-history"),
        baseline=opt("--bm-baseline"),
        update_baseline=bool(opt("--bm-update-baseline")),
        release=opt("--bm-release"),
        boot_retries=retries,
        console=bool(opt("--bm-console")),
    )

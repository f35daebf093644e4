"""``pytest-baremetal init``: a starter project for your own build in your own folder.

Writes ``pytest.ini`` (target, build, profile), a marker profile skeleton, a conftest and
starter tests that pass as soon as the firmware starts the build and it prints a line.
Boards come with the plugin; ``--boards`` copies them into ``boards/`` to edit. Existing
files are kept.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TextIO

from pytest_baremetal import resources
from pytest_baremetal.errors import ConfigError

ANY_LINE_BUT_FIRMWARE = r"^(?!BdsDxe: )\S"

PROFILE = """\
# Marker profile of {name}: the lines your build prints, turned into events tests use.
# A pattern is a Python regex searched in each console line (ANSI codes and CRs removed);
# its named groups become the event's fields, typed by `fields` (int, float, bool, str,
# hex, ints). The reference guest's profile is a complete example:
#   {reference}
name: {name}

# The build's configuration file, written by the plugin beside it from
# @pytest.mark.bm_config(...) (leave it out when your build reads none):
# config: {{file: llm.cfg, keys: [prompt, steps, seed]}}

# OVMF says when it starts the EFI application (kind `loader`).
loader: '^BdsDxe: (?P<action>loading|starting) (?P<option>Boot[0-9A-Fa-f]{{4}})'

events:
  boot:
    # Your build's banner. {boot_comment}
    pattern: '{boot}'
  # perf: {{pattern: 'tok/s: (?P<decode_tok_s>[\\d.]+)', fields: {{decode_tok_s: float}},
  #         units: {{decode_tok_s: tok/s}}}}

# The end of a run (tests that wait for it need this line):
# done: '^Shutting down'

# Lines that fail a test at once instead of after a timeout:
death: ['X64 Exception Type', '^PANIC']
"""

TEST = '''\
"""First tests of {name}, written by `pytest-baremetal init`: the build boots and prints.

Run them with `pytest` (the board and the build are in pytest.ini). Each test gets `dut`,
the booted build; the boot is shared by the tests of one board.
"""


def test_firmware_starts_the_build(dut):
    starting = dut.event("loader", action="starting")
    assert starting.fields["option"].startswith("Boot"), starting.line


def test_build_prints_its_banner(dut):
    boot = dut.event("boot")  # the profile's `boot` pattern
    assert boot.line.strip(), dut.tail()
'''


@dataclass(frozen=True)
class InitRequest:
    folder: Path
    efi: Path | None = None
    files: tuple[tuple[str, Path], ...] = ()
    name: str = "my-build"
    banner: str | None = None
    target: str = "qemu-tcg"
    boards: bool = False


def _ini_path(value: Path, folder: Path) -> str:
    """A path for pytest.ini: relative to the project when inside it, '/'-separated."""
    value = value.expanduser().resolve()
    try:
        return PurePath(os.path.relpath(value, folder.resolve())).as_posix() \
            if value.is_relative_to(folder.resolve()) else value.as_posix()
    except ValueError:  # another drive on Windows
        return value.as_posix()


CONFTEST = '''\
"""This plugin's `board` and `dut` for these tests, even when another installed plugin
defines fixtures of the same names (pytest-embedded has a `dut`)."""

from pytest_baremetal.plugin import board, dut

__all__ = ["board", "dut"]
'''


def _ini(request: InitRequest) -> str:
    lines = ["[pytest]", "testpaths = tests", f"bm_targets = {request.target}",
             "bm_profile = profiles/" + request.name + ".yaml"]
    if request.efi is not None:
        lines.append(f"bm_efi = {_ini_path(request.efi, request.folder)}")
        if request.files:
            lines.append("bm_files =")
            lines += [f"    {n}={_ini_path(p, request.folder)}" for n, p in request.files]
    else:
        lines += ["# your build (until then the reference guest that ships with the plugin):",
                  "# bm_efi = build/app.efi", "# bm_files = model.bin=models/model.bin"]
    lines.append("# more boards: a boards/ folder here adds to (or overrides) the packaged ones")
    return "\n".join(lines) + "\n"


def _check(request: InitRequest) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", request.name):
        raise ConfigError(f"--name {request.name!r}: use letters, digits, '-', '_' or '.'")
    if request.efi is not None and not request.efi.is_file():
        raise ConfigError(f"--efi {request.efi}: no such file; build your EFI application "
                          "first or fix the path")
    for name, path in request.files:
        if not path.is_file():
            raise ConfigError(f"--file {name}={path}: no such file")
    if request.banner is not None:
        try:
            re.compile(request.banner)
        except re.error as error:
            raise ConfigError(f"--banner {request.banner!r}: not a regex ({error})") from None
        if "'" in request.banner:
            raise ConfigError(f"--banner {request.banner!r}: leave out single quotes "
                              "(the profile quotes the pattern with them)")


def write_project(request: InitRequest, out: TextIO) -> list[Path]:
    """Writes the starter files; returns those written (existing ones are kept)."""
    _check(request)
    folder = request.folder
    reference = Path(__file__).resolve().parent / "profiles" / "reference.yaml"
    boot = request.banner or ANY_LINE_BUT_FIRMWARE
    comment = ("From --banner." if request.banner else
               "For now: the first line that is not the firmware's; write yours here, "
               "e.g. '^LLM v(?P<version>[\\d.]+)' with fields: {version: str}.")
    files = {
        folder / "pytest.ini": _ini(request),
        folder / "profiles" / f"{request.name}.yaml": PROFILE.format(
            name=request.name, reference=reference, boot=boot, boot_comment=comment),
        folder / "tests" / "test_first_boot.py": TEST.format(name=request.name),
        folder / "tests" / "conftest.py": CONFTEST,
    }
    written: list[Path] = []
    for path, text in files.items():
        if path.exists():
            out.write(f"kept     {path} (exists)\n")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
        out.write(f"wrote    {path}\n")
    if request.boards:
        source = resources.packaged_boards()
        if source is None:
            raise ConfigError("this installation carries no boards to copy")
        for name in resources.WHEEL_BOARDS:
            path = folder / "boards" / f"{name}.yaml"
            if path.exists():
                out.write(f"kept     {path} (exists)\n")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / f"{name}.yaml", path)
            written.append(path)
            out.write(f"wrote    {path}\n")
    out.write(f"\nnext: cd {folder} && pytest   (boots on {request.target}; "
              "`python -m pytest_baremetal doctor` checks QEMU and OVMF)\n")
    return written


def no_tests_hint(targets: tuple[str, ...]) -> list[str]:
    """What to say when a run chose boards but found no tests (an empty folder, a new
    project): where the bundled suites are and how to start one's own."""
    if not targets:
        return []
    boards = ",".join(targets)
    return [f"no tests collected for --target {boards}. To boot the reference guest and run "
            "the bundled suites:",
            f"    pytest --pyargs pytest_baremetal.suites --target={boards}",
            "  or start tests for your own build: pytest-baremetal init --efi path/to/app.efi"]

"""Build the fixture guest once per session and boot it in QEMU with a guaranteed teardown.

Fixtures (for tests/conftest.py: ``from fixture_guest.fixtures import *``):

- ``fixture_efi`` (session): path to the built ``fixture.efi`` (skips without gcc/gnu-efi).
- ``fixture_image`` (session): ``fixture_image(mode) -> Path``, a bootable disk whose
  ``mode.txt`` holds ``mode`` ("lines 5", "hang", "crash", "garbage", "echo"); cached.
- ``qemu_boot`` (function): ``qemu_boot(board, image, **kw) -> QemuProcess`` started
  paused; every QEMU it started is stopped when the test ends, pass or fail.
- ``process_gone`` (session): ``process_gone(pid) -> bool`` (gone or a zombie).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_baremetal.boards import Board
from pytest_baremetal.targets.qemu.process import QemuProcess, launch

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
NEEDS = ("gcc", "ld", "objcopy", "make")
EFI_HEADERS = Path("/usr/include/efi/efi.h")


def build_fixture_efi(build_dir: Path = BUILD) -> Path:
    """Run the Makefile (incremental, one make at a time: xdist workers share the build
    folder); returns the .efi path."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".make.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["make", "-s", "-C", str(HERE), f"BUILD={build_dir}"], check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    return build_dir / "fixture.efi"


def make_image(efi: Path, mode: str, output: Path) -> Path:
    """A GPT disk with the fixture as BOOTX64.EFI and ``mode`` in /mode.txt."""
    from pytest_baremetal.image import compose_image

    mode_file = output.with_suffix(".mode.txt")
    mode_file.write_text(mode + "\n", encoding="ascii")
    compose_image(output, efi, {"mode.txt": mode_file})
    return output


def _missing_tools() -> list[str]:
    missing = [tool for tool in NEEDS if shutil.which(tool) is None]
    if not EFI_HEADERS.is_file():
        missing.append("gnu-efi (sudo apt-get install gnu-efi)")
    return missing


@pytest.fixture(scope="session")
def fixture_efi() -> Path:
    missing = _missing_tools()
    if missing:
        pytest.skip(f"cannot build the fixture guest: missing {', '.join(missing)}")
    try:
        return build_fixture_efi()
    except subprocess.CalledProcessError as error:
        output = (error.stdout or b"") + (error.stderr or b"")
        pytest.fail(f"fixture guest build failed:\n{output.decode(errors='replace')}")


@pytest.fixture(scope="session")
def fixture_image(fixture_efi: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Callable[[str], Path]:
    folder = tmp_path_factory.mktemp("fixture-images")
    cache: dict[str, Path] = {}

    def make(mode: str) -> Path:
        if mode not in cache:
            name = "".join(c if c.isalnum() else "_" for c in mode) + ".img"
            cache[mode] = make_image(fixture_efi, mode, folder / name)
        return cache[mode]

    return make


@pytest.fixture
def qemu_boot(tmp_path: Path) -> Iterator[Callable[..., QemuProcess]]:
    started: list[QemuProcess] = []

    def boot(board: Board, image: Path, **kwargs: Any) -> QemuProcess:
        log_dir = tmp_path / f"qemu{len(started)}"
        proc = launch(board, image, log_dir, **kwargs)
        started.append(proc)
        return proc

    yield boot
    for proc in started:
        proc.stop()


def no_process(pid: int) -> bool:
    """True when ``pid`` is gone (or a zombie of someone else's, which cannot run)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.fixture(scope="session")
def process_gone() -> Callable[[int], bool]:
    return no_process

"""The physical path end to end on the simulated Skylake box: PXE that fetches nothing, a
console adapter that vanishes mid-run, a board held by another run, power off after every
failure, and no process left behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_baremetal.boards import Board, load_board
from pytest_baremetal.build_under_test import BuildUnderTest, reference_guest
from pytest_baremetal.bus import EventBus
from pytest_baremetal.dut import Dut
from pytest_baremetal.errors import BootError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import Profile, load_profile
from pytest_baremetal.session import REFERENCE_PROFILE
from pytest_baremetal.targets import BootRequest
from pytest_baremetal.targets.physical import lab as lab_mod
from pytest_baremetal.targets.physical.lock import BoardLock, resources_of
from pytest_baremetal.targets.physical.target import boot_physical

pytest.importorskip("serial")


def boot(board: Board[Any], config: GuestConfig, tmp_path: Path, profile: Profile,
         build: BuildUnderTest) -> Dut:
    request = BootRequest(config, tmp_path / "unused.img", tmp_path / "logs", profile, build,
                          EventBus())
    return boot_physical(board, request)
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def board_file(folder: Path, run: Path, tftp: Path, name: str = "simbox") -> Board:
    path = folder / f"{name}.yaml"
    path.write_text(f"""kind: physical
features: [avx2, repl]
timeouts: {{firmware: 60, boot: 90, run: 300}}
physical:
  console: {{device: {run}/console, reconnect: 20}}
  power:
    lcus: {{device: {run}/relay, channel: 1, query: true}}
    sense: [test, -e, {run}/machine-on]
  boot: {{pxe: {{tftp_root: {tftp}, bootfile: boot.ipxe, server: sim, ipxe: true}}}}
  off_wait: 0.2
  sim: {{run_dir: {run}}}
""")
    return load_board(path)


def qemus_in(run: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", f"simbox:{run}"],
                         capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if "qemu-system" in line]


def listening_unix(pid: int) -> list[str]:
    """The unix sockets process ``pid`` listens on (accepting connections)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    rows = Path("/proc/net/unix").read_text().splitlines()[1:]
    # Flags 00010000 is __SO_ACCEPTCON: a listening socket
    return [row for row in rows if len(row.split()) >= 7 and row.split()[3] == "00010000"
            and row.split()[6] in inodes]


@pytest.fixture
def sim_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Profile,
                                                                           BuildUnderTest]]:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    monkeypatch.setenv("BM_LOCK_DIR", str(tmp_path / "locks"))
    run = Path(os.environ.get("TMPDIR", "/tmp")) / f"bm-simtest-{os.getpid()}-{id(tmp_path)}"
    yield run, load_profile(REFERENCE_PROFILE), reference_guest(ROOT)
    lab_mod.release_all()
    assert not qemus_in(run), "the simulated box's QEMU outlived the test"
    shutil.rmtree(run, ignore_errors=True)


def relay_is_off(run: Path) -> bool:
    return not (run / "machine-on").exists()


def test_pxe_that_fetches_nothing_is_reported_and_power_is_off(
        tmp_path: Path, sim_env: tuple[Path, Profile, BuildUnderTest]) -> None:
    run, profile, build = sim_env
    # The plugin stages into a folder the box's PXE server does not serve: nothing to fetch.
    board = board_file(tmp_path, run, tmp_path / "not-served")
    start = time.monotonic()
    with pytest.raises(BootError) as info:
        boot(board, GuestConfig.of({}, "t"), tmp_path, profile, build)
    assert "PXE boot failed, the firmware said" in str(info.value)
    assert "boot.ipxe" in str(info.value)
    assert time.monotonic() - start < 80
    assert relay_is_off(run) and not qemus_in(run)
    steps = (tmp_path / "logs" / "boot-info.txt").read_text()
    assert "failed: " in steps and steps.rstrip().endswith("power off")


def test_console_vanishes_mid_run_and_returns(
        tmp_path: Path, sim_env: tuple[Path, Profile, BuildUnderTest]) -> None:
    run, profile, build = sim_env
    board = board_file(tmp_path, run, run / "tftp")
    config = GuestConfig.of({"mode": "repl", "steps": 8, "bench": 0}, "t")
    dut = boot(board, config, tmp_path, profile, build)
    try:
        dut.event("repl_ready", timeout=120)
        lab = lab_mod._labs[board.name]
        assert lab.sim is not None
        # the box's serial line is a socket pair QEMU inherited: nothing another local
        # process could connect to first, neither a socket file nor a listening socket
        assert not [p for p in run.iterdir() if stat.S_ISSOCK(p.lstat().st_mode)]
        assert lab.sim.proc is not None and not listening_unix(lab.sim.proc.pid)
        qemu = qemus_in(run)
        assert len(qemu) == 1 and "socket,id=ser0,fd=" in qemu[0] and "path=" not in qemu[0]
        lab.sim.unplug_console()
        dut.expect(r"\[bm\] console lost on", timeout=10)
        dut.expect(r"\[bm\] console back on", timeout=20)
        gen = dut.ask("Once upon a time", timeout=120)
        assert gen.tokens > 0
        dut.console.send_line("/quit")
        assert dut.wait_done(timeout=60).fields["status"] == "ok"
        assert dut.wait_power_off(timeout=30) == 0
    finally:
        dut.close()
    assert relay_is_off(run)


def test_board_held_by_another_run_fails_clearly(
        tmp_path: Path, sim_env: tuple[Path, Profile, BuildUnderTest]) -> None:
    run, profile, build = sim_env
    board = board_file(tmp_path, run, run / "tftp", name="heldbox")
    # another run on this host holds the box's console adapter, under another board name
    other_board = board_file(tmp_path, run, run / "tftp", name="samebox")
    other = BoardLock("samebox", resources=resources_of("samebox", other_board.spec))
    other.acquire()
    try:
        with pytest.raises(BootError, match=r"board heldbox's console .*/console is in use "
                                            r"by another run \(pid "):
            boot(board, GuestConfig.of({}, "t"), tmp_path, profile, build)
    finally:
        other.release()
    assert not (run / "ready").exists() or not qemus_in(run)


def test_lock_waits_for_the_holder(tmp_path: Path) -> None:
    first = BoardLock("box", tmp_path)
    first.acquire()
    second = BoardLock("box", tmp_path)
    with pytest.raises(BootError, match="waited 0 s"):
        second.acquire(wait=0.3)
    first.release()
    second.acquire(wait=1)
    assert second.held
    second.release()

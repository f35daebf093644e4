"""Two runs on one lab host: locks per physical resource that a planted symlink cannot
abuse, per-run simulated boxes, and two real pytest runs side by side."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from pytest_baremetal import runfolder
from pytest_baremetal.boards import load_board
from pytest_baremetal.errors import BootError
from pytest_baremetal.targets.physical.lock import BoardLock, ResourceLock, lock_name, resources_of
from pytest_baremetal.targets.physical.schema import PhysicalSpec

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PROFILE = ROOT / "tests" / "data" / "fixture-profile.yaml"
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def test_planted_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("do not truncate me\n")
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / lock_name("serial:/dev/ttyUSB0")).symlink_to(victim)
    lock = ResourceLock("serial:/dev/ttyUSB0", locks, "board b's console /dev/ttyUSB0")
    with pytest.raises(BootError, match=r"cannot open lock file .*serial_dev_ttyUSB0.*symlink"):
        lock.acquire()
    assert victim.read_text() == "do not truncate me\n"
    assert not lock.held


def test_lock_files_are_usable_by_every_user_of_the_host(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        lock = ResourceLock("serial:/dev/ttyUSB3", tmp_path)
        lock.acquire()
    finally:
        os.umask(old)
    try:
        assert lock.path.stat().st_mode & 0o777 == 0o666
        assert lock.holder().startswith(f"pid {os.getpid()} since ")
    finally:
        lock.release()


def test_planted_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / lock_name("relay"))
    with pytest.raises(BootError, match="not a regular file"):
        ResourceLock("relay", tmp_path).acquire()


def test_lock_folder_that_is_a_symlink_is_refused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "locks").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setenv("BM_LOCK_DIR", str(tmp_path / "locks"))
    with pytest.raises(BootError, match=r"lock folder .*locks is not a plain folder"):
        ResourceLock("x").acquire()


BOX = """kind: physical
physical:
  console: {{device: {console}}}
  power: {{lcus: {{device: {relay}, channel: {channel}}}}}
  boot: {{disk: {{}}}}
"""


def board_spec(folder: Path, name: str, console: str, relay: str,
               channel: int = 1) -> PhysicalSpec:
    path = folder / f"{name}.yaml"
    path.write_text(BOX.format(console=console, relay=relay, channel=channel))
    return load_board(path).spec


def test_locks_follow_the_resource_not_the_board_name(tmp_path: Path) -> None:
    adapter = tmp_path / "ttyUSB0"
    adapter.write_text("")
    by_id = tmp_path / "usb-FTDI_123-if00"
    by_id.symlink_to(adapter)
    locks = tmp_path / "locks"
    locks.mkdir()
    first = BoardLock("lab-a", locks, resources_of("lab-a", board_spec(
        tmp_path, "lab-a", str(adapter), "/dev/relay0", 1)))
    first.acquire()
    try:
        # the same adapter under another name and another board file: refused, named
        same = BoardLock("lab-b", locks, resources_of("lab-b", board_spec(
            tmp_path, "lab-b", str(by_id), "/dev/relay0", 2)))
        with pytest.raises(BootError, match=r"board lab-b's console .*usb-FTDI_123-if00 is in "
                                            r"use by another run \(pid \d+"):
            same.acquire()
        assert not any(lock.held for lock in same.locks), "a partial lock was kept"
        # another channel of the same relay board, another adapter: runs side by side
        other = BoardLock("lab-c", locks, resources_of("lab-c", board_spec(
            tmp_path, "lab-c", "/dev/ttyUSB9", "/dev/relay0", 2)))
        other.acquire()
        other.release()
        # the same relay channel: refused
        channel = BoardLock("lab-d", locks, resources_of("lab-d", board_spec(
            tmp_path, "lab-d", "/dev/ttyUSB8", "/dev/relay0", 1)))
        with pytest.raises(BootError, match=r"board lab-d's relay /dev/relay0 channel 1 is in use"):
            channel.acquire()
    finally:
        first.release()


EXPAND = "from pytest_baremetal import runfolder; print(runfolder.expand('{run}/console', 'b'))"


def test_run_placeholder_is_a_folder_per_run_removed_at_exit() -> None:
    outs = [subprocess.run([sys.executable, "-c", EXPAND], capture_output=True, text=True,
                           env=ENV, check=True).stdout.strip() for _ in range(2)]
    assert outs[0] != outs[1] and all(out.endswith("/b/console") for out in outs)
    assert not any(Path(out).parent.parent.exists() for out in outs), "run folder left behind"
    mine = runfolder.expand({"a": ["{run}/x", 3]}, "sim-skylake")
    assert mine == {"a": [f"{runfolder.root()}/sim-skylake/x", 3]}


ROOT_THEN = "from pytest_baremetal import runfolder; print(runfolder.root(), flush=True); "


def test_run_folder_of_a_killed_run_is_removed_by_the_next() -> None:
    base = Path(tempfile.mkdtemp(prefix="bmrf", dir="/tmp"))  # short: runfolder keeps it
    env = dict(ENV, TMPDIR=str(base))
    live = subprocess.Popen([sys.executable, "-c", ROOT_THEN + "import sys; sys.stdin.read()"],
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        # the live run has its folder before the other is killed (else, started late on a
        # loaded host, its own sweep would rightly remove the dead run's folder first)
        assert live.stdout is not None
        live_folder = Path(live.stdout.readline().strip())
        killed = subprocess.run([sys.executable, "-c", ROOT_THEN + "import os, signal; "
                                 "os.kill(os.getpid(), signal.SIGKILL)"],
                                env=env, capture_output=True, text=True, check=False)
        assert killed.returncode == -signal.SIGKILL
        dead_folder = Path(killed.stdout.strip())
        older = base / "bm-run-olderversion"  # no owner file: not ours to judge
        older.mkdir()
        assert dead_folder.is_dir() and live_folder.is_dir()
        assert dead_folder.parent == live_folder.parent == base
        nxt = subprocess.run([sys.executable, "-c", EXPAND], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
        assert not dead_folder.exists(), "the killed run's folder was left behind"
        assert live_folder.is_dir() and older.is_dir()
        assert not Path(nxt).parent.parent.exists()
        live.communicate("", timeout=30)
        assert live.returncode == 0 and not live_folder.exists()
    finally:
        if live.poll() is None:
            live.kill()
            live.wait()
        shutil.rmtree(base)


LAB = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pytest_baremetal.boards import load_board
    from pytest_baremetal.targets.physical.lab import lab_for, release_all
    board = load_board(Path(sys.argv[1]))
    lab = lab_for(board.name, board.spec)
    print(lab.sim.run_dir, lab.sim.proc.pid, flush=True)
    sys.stdin.read()
    release_all()
""")


@pytest.mark.slow
def test_two_runs_of_sim_skylake_get_a_box_each(tmp_path: Path) -> None:
    """Lock and simulator of the shipped board, twice at once: both start, apart."""
    pytest.importorskip("serial")
    env = dict(ENV, BM_LOCK_DIR=str(tmp_path / "locks"))
    runs = [subprocess.Popen([sys.executable, "-c", LAB, str(ROOT / "boards/sim-skylake.yaml")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    try:
        lines = [run.stdout.readline().split() for run in runs]  # type: ignore[union-attr]
        errors = [run.stderr.read() if not line else "" for run, line in  # type: ignore[union-attr]
                  zip(runs, lines, strict=True)]
        assert all(lines), errors
        dirs = [Path(line[0]) for line in lines]
        assert dirs[0] != dirs[1]
        for folder, line in zip(dirs, lines, strict=True):
            assert (folder / "ready").read_text().strip() == line[1]
        assert all((d / "console").is_symlink() for d in dirs)
    finally:
        for run in runs:
            run.communicate("", timeout=60)
    assert [run.returncode for run in runs] == [0, 0]
    assert not any(d.exists() for d in dirs), "a run folder outlived its run"


def start_run(folder: Path, efi: Path, logs: Path) -> subprocess.Popen[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mode.txt").write_text("lines 3\n")
    (folder / "test_guest.py").write_text(
        "def test_done(dut):\n    assert dut.event('done', timeout=120) is not None\n")
    argv = [sys.executable, "-m", "pytest", "--target=qemu-tcg", f"--bm-boards={ROOT / 'boards'}",
            f"--bm-efi={efi}", f"--bm-file=mode.txt={folder / 'mode.txt'}",
            f"--bm-profile={FIXTURE_PROFILE}", f"--bm-logs={logs}", "-p", "no:cacheprovider",
            "-p", "no:randomly", "test_guest.py"]
    return subprocess.Popen(argv, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=ENV)


def outputs_of(runs: list[subprocess.Popen[str]], timeout: float) -> list[str]:
    """Each run's output once it ends; any run still going at the end is killed."""
    outs = []
    try:
        for run in runs:
            outs.append(run.communicate(timeout=timeout)[0])
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    return outs


@pytest.mark.slow
@pytest.mark.parametrize("shared_logs", [False, True], ids=["two-clones", "one-log-folder"])
def test_two_qemu_tcg_runs_side_by_side_both_pass(tmp_path: Path, fixture_efi: Path,
                                                 shared_logs: bool) -> None:
    runs = [start_run(tmp_path / f"clone{i}", fixture_efi,
                      tmp_path / ("logs" if shared_logs else f"clone{i}/logs")) for i in (1, 2)]
    outs = outputs_of(runs, timeout=300)
    for run, out in zip(runs, outs, strict=True):
        assert run.returncode == 0 and "1 passed" in out, out
    folders = sorted((tmp_path / "logs").glob("2*")) if shared_logs else \
        [f for i in (1, 2) for f in (tmp_path / f"clone{i}/logs").glob("2*")]
    assert len(folders) == 2, folders  # each run its own log folder


@pytest.mark.slow
def test_two_pytest_runs_of_sim_skylake_side_by_side_both_pass(tmp_path: Path) -> None:
    """Two real runs of the shipped simulated board at once (shared default lock folder):
    each gets its own box, boots it over PXE and passes."""
    pytest.importorskip("serial")
    runs = []
    for name in ("one", "two"):
        out = tmp_path / name
        out.mkdir()
        argv = [sys.executable, "-m", "pytest", str(ROOT / "suites" / "test_boot.py"),
                f"--rootdir={ROOT}", "-c", str(ROOT / "pyproject.toml"),
                "--target=sim-skylake", "-k", "banner_names_the_build",
                "--bm-set", "timeouts.firmware=300", f"--bm-logs={out / 'logs'}",
                f"--bm-history={out / 'history.sqlite'}", "-p", "no:cacheprovider"]
        runs.append(subprocess.Popen(argv, cwd=out, env=ENV, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    outs = outputs_of(runs, timeout=900)
    for run, out in zip(runs, outs, strict=True):
        assert run.returncode == 0 and "1 passed" in out, out[-3000:]
        assert "in use by another run" not in out

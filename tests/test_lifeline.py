"""Children die with the run: SIGKILL of the owner (from any thread), a real pytest killed
mid-boot, SIGINT ignored by a background job, and the Windows job object (mocked)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_baremetal import lifeline

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PROFILE = ROOT / "tests" / "data" / "fixture-profile.yaml"
GONE_WITHIN = 5.0
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="process groups and signals")


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_gone(pids: list[int], within: float = GONE_WITHIN) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


OWNER = textwrap.dedent("""
    import subprocess, sys, threading, time
    from pytest_baremetal import lifeline
    from pytest_baremetal.targets.qemu import reaper

    def spawn():
        # a group with a grandchild, like labgrid's exporter and its ser2net
        proc = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; wait"],
                                stdout=subprocess.PIPE, text=True, **lifeline.child_options())
        reaper.register(proc)
        return [proc.pid, int(proc.stdout.readline())]

    pids = spawn()
    out = []
    worker = threading.Thread(target=lambda: out.extend(spawn()))
    worker.start()
    worker.join()          # the thread that forked is gone: its children must live on
    print(*pids, *out, lifeline.watchdog_pid(), flush=True)
    time.sleep(300)
""")


@posix_only
def test_sigkill_of_the_owner_kills_every_group_it_started() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    pids: list[int] = []
    try:
        assert owner.stdout is not None
        *pids, watchdog = (int(word) for word in owner.stdout.readline().split())
        assert len(pids) == 4
        time.sleep(1.0)
        assert all(alive(pid) for pid in pids), "a child died with the thread that forked it"
        assert alive(watchdog)
        owner.kill()
        owner.wait()
        assert wait_gone([*pids, watchdog]) == []
    finally:
        owner.kill()
        owner.wait()
        kill_all(pids)


IGNORING = textwrap.dedent("""
    import signal, subprocess, sys, time
    from pytest_baremetal import lifeline
    from pytest_baremetal.targets.qemu import reaper
    proc = subprocess.Popen(["sleep", "300"], **lifeline.child_options())
    reaper.register(proc)
    print(proc.pid, signal.getsignal(signal.SIGINT) == signal.SIG_IGN, flush=True)
    time.sleep(300)
""")


@posix_only
def test_sigint_ignored_by_a_background_job_stays_ignored() -> None:
    """`pytest ... &` in a script: SIGINT is ignored, so it must not stop the children."""
    owner = subprocess.Popen([sys.executable, "-c", IGNORING], stdout=subprocess.PIPE,
                             text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    child = 0
    try:
        assert owner.stdout is not None
        word, ignored = owner.stdout.readline().split()
        child = int(word)
        assert ignored == "True", "the reaper installed a SIGINT handler over SIG_IGN"
        owner.send_signal(signal.SIGINT)
        time.sleep(1.0)
        assert owner.poll() is None and alive(child)
        owner.terminate()  # SIGTERM still cleans up
        owner.wait(10)
        assert wait_gone([child]) == []
    finally:
        owner.kill()
        owner.wait()
        kill_all([child] if child else [])


def qemu_pids_under(folder: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"qemu-system" in cmdline and str(folder).encode() in cmdline \
                    and alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def run_pytest(pytester: pytest.Pytester, efi: Path, mode: str, source: str,
               extra: tuple[str, ...] = (), **popen: Any) -> subprocess.Popen[bytes]:
    (pytester.path / "mode.txt").write_text(mode + "\n")
    pytester.makepyfile(test_guest=source)
    argv = [sys.executable, "-m", "pytest", "--target=qemu-tcg", f"--bm-boards={ROOT / 'boards'}",
            f"--bm-efi={efi}", f"--bm-file=mode.txt={pytester.path / 'mode.txt'}",
            f"--bm-profile={FIXTURE_PROFILE}", f"--bm-logs={pytester.path / 'logs'}",
            "-p", "no:cacheprovider", *extra]
    return subprocess.Popen(argv, cwd=pytester.path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, **popen)


def wait_for_qemu(folder: Path, proc: subprocess.Popen[bytes]) -> list[int]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        pids = qemu_pids_under(folder)
        if pids:
            return pids
        time.sleep(0.05)
    out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None \
        and proc.stdout else ""
    pytest.fail(f"QEMU never started\n{out}")


@pytest.mark.slow
@posix_only
@pytest.mark.parametrize("delay", [0.0, 3.0], ids=["at-qemu-start", "mid-boot"])
def test_sigkill_of_pytest_leaves_no_qemu(pytester: pytest.Pytester, fixture_efi: Path,
                                          delay: float) -> None:
    proc = run_pytest(pytester, fixture_efi, "hang",
                      "def test_wait(dut):\n    dut.event('done', timeout=120)\n",
                      start_new_session=True)
    qemu: list[int] = []
    try:
        qemu = wait_for_qemu(pytester.path, proc)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)  # the pytest process only, as a CI runner does
        proc.wait()
        assert wait_gone(qemu) == [], "QEMU outlived a SIGKILLed pytest by 5 s"
        assert qemu_pids_under(pytester.path) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_all(qemu_pids_under(pytester.path))


@pytest.mark.slow
@posix_only
def test_background_pytest_ignores_sigint_and_its_boot_goes_on(pytester: pytest.Pytester,
                                                               fixture_efi: Path) -> None:
    proc = run_pytest(pytester, fixture_efi, "lines 3",
                      "def test_done(dut):\n    dut.event('done', timeout=120)\n",
                      start_new_session=True,
                      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        wait_for_qemu(pytester.path, proc)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_all(qemu_pids_under(pytester.path))
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "1 passed" in text and "KeyboardInterrupt" not in text


class FakeKernel32:
    """Records the job-object calls lifeline makes on Windows."""

    def __init__(self, assign_ok: bool = True) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.flags: int | None = None
        self.assign_ok = assign_ok

    def CreateJobObjectW(self, attributes: Any, name: Any) -> int:
        self.calls.append(("create", name))
        return 77

    def SetInformationJobObject(self, job: int, kind: int, info: Any,
                                size: int) -> int:
        limits = ctypes.cast(info, ctypes.POINTER(lifeline._ExtendedLimits)).contents
        self.flags = limits.BasicLimitInformation.LimitFlags
        self.calls.append(("set", (job, kind, size)))
        return 1

    def AssignProcessToJobObject(self, job: int, handle: int) -> int:
        self.calls.append(("assign", (job, handle)))
        return 1 if self.assign_ok else 0

    def CloseHandle(self, handle: int) -> int:
        self.calls.append(("close", handle))
        return 1


class FakeProc:
    pid = 4242
    _handle = 0x1234


def test_windows_job_kills_its_processes_when_we_die() -> None:
    kernel32 = FakeKernel32()
    job = lifeline.make_kill_on_close_job(kernel32)
    lifeline.assign_to_job(kernel32, job, FakeProc())  # type: ignore[arg-type]
    assert kernel32.flags == lifeline.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    assert kernel32.calls == [
        ("create", None),
        ("set", (77, 9, ctypes.sizeof(lifeline._ExtendedLimits))),
        ("assign", (77, 0x1234))]
    # the 64-bit layout Windows expects: 144 bytes (checked against winnt.h)
    if ctypes.sizeof(ctypes.c_void_p) == 8:
        assert ctypes.sizeof(lifeline._ExtendedLimits) == 144
    with pytest.raises(OSError, match="pid 4242"):
        lifeline.assign_to_job(FakeKernel32(assign_ok=False), job, FakeProc())  # type: ignore[arg-type]


def test_windows_children_get_their_own_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200, raising=False)
    assert lifeline.child_options() == {"creationflags": 0x200}


SIMBOX = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from pytest_baremetal.boards import load_board
    from pytest_baremetal.targets.physical.lcus import frame
    from pytest_baremetal.targets.physical.simbox import SimBox
    box = SimBox(load_board(Path(sys.argv[1])).spec)
    box.start()
    fd = os.open(box.run_dir / "relay", os.O_RDWR | os.O_NOCTTY)
    os.write(fd, frame(1, True))        # power on: the simulator starts its QEMU
    deadline = time.monotonic() + 60
    while not (box.run_dir / "machine-on").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    qemu = (box.run_dir / "machine-on").read_text().strip()
    print(box.proc.pid, qemu, flush=True)
    time.sleep(300)
""")


@pytest.mark.slow
@posix_only
def test_sigkill_of_the_owner_stops_the_simulated_box_and_its_qemu() -> None:
    pytest.importorskip("serial")
    owner = subprocess.Popen([sys.executable, "-c", SIMBOX,
                              str(ROOT / "boards" / "sim-skylake.yaml")],
                             stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    pids: list[int] = []
    try:
        assert owner.stdout is not None
        pids = [int(word) for word in owner.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(pid) for pid in pids), pids
        owner.kill()
        owner.wait()
        assert wait_gone(pids) == [], "the simulator or its QEMU outlived a SIGKILLed run"
    finally:
        owner.kill()
        owner.wait()
        kill_all(pids)


LAB_OWNER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pytest_baremetal.boards import load_board
    from pytest_baremetal.targets.physical.remote import RemotePlace
    from pytest_baremetal.targets.physical.simlab import SimLab

    board, run, work = (Path(a) for a in sys.argv[1:4])
    lab = SimLab(load_board(board).spec, run, work).start()
    place = RemotePlace(lab.address, lab.place, 0)
    place.acquire()                     # the exporter now runs ser2net for both ports
    deadline = time.monotonic() + 30
    while not any("ser2net" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")
                  for p in lab.pids()) and time.monotonic() < deadline:
        time.sleep(0.1)
    print(*lab.pids(), flush=True)
    time.sleep(300)
""")


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.slow
@posix_only
def test_sigkill_of_the_owner_stops_labgrid_ser2net_and_the_box(tmp_path: Path) -> None:
    for tool in ("ser2net", "qemu-system-x86_64"):
        if not (Path("/usr/sbin") / tool).exists() and not Path(f"/usr/bin/{tool}").exists():
            pytest.skip(f"{tool} is not installed")
    pytest.importorskip("labgrid")
    board = tmp_path / "bm-kill.yaml"
    run = tmp_path / "run"
    board.write_text(f"""kind: physical
physical:
  place: bm-kill
  console: {{remote: console}}
  power:
    lcus: {{remote: relay, channel: 1, query: true, timeout: 5}}
    sense: [test, -e, {run}/machine-on]
  boot: {{disk: {{write_to: {run}/disk.img}}}}
""")
    owner = subprocess.Popen([sys.executable, "-c", LAB_OWNER, str(board), str(run),
                              str(tmp_path / "work")], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    pids: list[int] = []
    try:
        assert owner.stdout is not None
        pids = [int(word) for word in owner.stdout.readline().split()]
        commands = " ".join(command_of(pid) for pid in pids)
        for part in ("labgrid-coordinator", "labgrid-exporter", "ser2net",
                     "pytest_baremetal.targets.physical.sim"):
            assert part in commands, commands
        owner.kill()
        owner.wait()
        left = wait_gone(pids)
        assert left == [], [command_of(pid) for pid in left]
    finally:
        owner.kill()
        owner.wait()
        kill_all(pids)


DNSMASQ_OWNER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pytest_baremetal.targets.physical.pxe import Dnsmasq
    log = Path(sys.argv[1])
    server = Dnsmasq(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                      "--port=0", "--no-resolv", "--interface=lo", "--bind-interfaces",
                      "--pid-file", f"--log-facility={log}"], log)
    server.start(settle=0.3)
    print(server.proc.pid, flush=True)
    time.sleep(300)
""")


@pytest.mark.slow
@posix_only
def test_sigkill_of_the_owner_stops_dnsmasq(tmp_path: Path) -> None:
    if not Path("/usr/sbin/dnsmasq").exists():
        pytest.skip("dnsmasq is not installed")
    owner = subprocess.Popen([sys.executable, "-c", DNSMASQ_OWNER, str(tmp_path / "d.log")],
                             stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    pids: list[int] = []
    try:
        assert owner.stdout is not None
        pids = [int(word) for word in owner.stdout.readline().split()]
        assert pids and "dnsmasq" in command_of(pids[0])
        owner.kill()
        owner.wait()
        assert wait_gone(pids) == []
    finally:
        owner.kill()
        owner.wait()
        kill_all(pids)


CLEAN_EXIT = textwrap.dedent("""
    import subprocess
    from pytest_baremetal import lifeline
    from pytest_baremetal.targets.qemu import reaper
    proc = subprocess.Popen(["sleep", "300"], **lifeline.child_options())
    reaper.register(proc)
    print(proc.pid, lifeline.watchdog_pid(), flush=True)
""")


@posix_only
def test_a_normal_exit_leaves_neither_children_nor_the_watchdog() -> None:
    done = subprocess.run([sys.executable, "-c", CLEAN_EXIT], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60, check=True)
    pids = [int(word) for word in done.stdout.split()]
    assert len(pids) == 2
    assert wait_gone(pids) == [], [command_of(pid) for pid in pids]


@pytest.mark.slow
@posix_only
def test_sigkill_of_an_xdist_controller_leaves_no_qemu(pytester: pytest.Pytester,
                                                       fixture_efi: Path) -> None:
    """CI runs with -n: killing the controller ends its workers, and their QEMUs."""
    pytest.importorskip("xdist")
    proc = run_pytest(pytester, fixture_efi, "hang",
                      "def test_one(dut):\n    dut.event('done', timeout=120)\n"
                      "def test_two(dut):\n    dut.event('done', timeout=120)\n",
                      start_new_session=True, extra=("-n", "2"))
    qemu: list[int] = []
    try:
        qemu = wait_for_qemu(pytester.path, proc)  # one per worker: each boots its own
        time.sleep(2)
        qemu = sorted(set(qemu) | set(qemu_pids_under(pytester.path)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_gone(qemu) == [], "a worker's QEMU outlived the SIGKILLed controller"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_all(qemu_pids_under(pytester.path))

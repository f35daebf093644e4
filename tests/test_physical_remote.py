"""The labgrid remote path against a real coordinator and exporter on 127.0.0.1.

Each test starts a :class:`SimLab`: the simulated Skylake box (QEMU behind a pty console
and an LCUS relay on a pty), ``labgrid-coordinator`` on a free loopback port and
``labgrid-exporter`` serving both ptys through ser2net, with a place that matches them.
A run reserves the place, waits its turn, acquires it, boots through RFC 2217 and releases
it; a second run waits for the first or fails clearly after its bound. Every process the
lab started is gone when a test ends, pass or fail.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_baremetal.boards import load_board
from pytest_baremetal.errors import BootError
from pytest_baremetal.targets.physical import remote
from pytest_baremetal.targets.physical.lcus import LcusRelay
from pytest_baremetal.targets.physical.remote import RemotePlace, parse_ports
from pytest_baremetal.targets.physical.simlab import SimLab

pytest.importorskip("labgrid")
pytest.importorskip("serial")
ROOT = Path(__file__).resolve().parents[1]
REMOTE_BOARD = ROOT / "boards" / "sim-skylake-remote.yaml"
# pyserial's rfc2217 module still calls Thread.setDaemon()
pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:serial.rfc2217")]

MakeLab = Callable[..., SimLab]


def board_file(folder: Path, run: Path, place: str) -> Path:
    path = folder / f"{place}.yaml"
    path.write_text(f"""kind: physical
features: [avx2, repl]
timeouts: {{firmware: 300, boot: 300, run: 600}}  # loaded 2-core hosts: slow, not hung
physical:
  place: {place}
  console: {{remote: console, reconnect: 20}}
  power:
    lcus: {{remote: relay, channel: 1, query: true, timeout: 5}}
    sense: [test, -e, {run}/machine-on]
  boot: {{disk: {{write_to: {run}/disk.img}}}}
  off_wait: 0.2
  lock_wait: 60
""")
    return path


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[MakeLab]:
    """Starts SimLabs for a board file; stops them at the end and checks that none of
    their processes (coordinator, exporter, ser2net, simulator, QEMU) is left."""
    for tool in ("qemu-system-x86_64", "ser2net"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            pytest.skip(f"{tool} is not installed (bash scripts/setup.sh)")
    labs: list[SimLab] = []

    def make(board: Path, run: Path) -> SimLab:
        lab = SimLab(load_board(board).spec, run, tmp_path / f"lab{len(labs)}")
        labs.append(lab)
        return lab.start()

    yield make
    for lab in labs:
        lab.stop()
    left = {str(lab.work_dir): lab.pids() for lab in labs if lab.pids()}
    assert not left, f"processes outlived their lab: {left}"


@pytest.fixture
def lab(make_lab: MakeLab, tmp_path: Path) -> SimLab:
    run = Path(os.environ.get("TMPDIR", "/tmp")) / f"bm-remotetest-{os.getpid()}-{id(tmp_path)}"
    return make_lab(board_file(tmp_path, run, "bm-test"), run)


def listening_on(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def reservations(lab: SimLab) -> list[str]:
    return re.findall(r"^Reservation '(\w+)'", lab.client("reservations"), re.MULTILINE)


# -- the place, no boot -------------------------------------------------------------------
def test_place_serves_the_console_and_relay_over_loopback(lab: SimLab) -> None:
    place = RemotePlace(lab.address, lab.place, 0)
    place.acquire()
    try:
        ports = place.serial_ports()
        assert set(ports) == {"console", "relay"}
        for url in ports.values():
            assert re.fullmatch(r"rfc2217://127\.0\.0\.1:\d+\?ign_set_control", url), url
            port = int(url.split(":")[2].split("?")[0])
            assert listening_on(port) and listening_on(port) <= LOOPBACK, listening_on(port)
        # The relay answers real LCUS frames through ser2net: the box powers on and off.
        relay = LcusRelay(lambda: ports["relay"], 1, query=True, timeout=5)
        try:
            relay.set(True)
            assert relay.get() is True
            assert wait_for(lambda: (lab.run_dir / "machine-on").exists(), 60)
            relay.set(False)
            assert wait_for(lambda: not (lab.run_dir / "machine-on").exists(), 60)
        finally:
            relay.close()
    finally:
        place.release()
    # Released: the exporter stops ser2net, the reservation is gone.
    assert wait_for(lambda: not any(listening_on(int(u.split(":")[2].split("?")[0]))
                                    for u in ports.values()), 60)
    assert reservations(lab) == []
    assert "acquired: None" in lab.client("-p", lab.place, "show")


def test_second_run_waits_its_turn_and_proceeds_on_release(
        lab: SimLab, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # the plugin routes notices to the terminal past capture; read them from stderr here
    monkeypatch.setattr(remote, "_show", None)
    first = RemotePlace(lab.address, lab.place, 0)
    first.acquire()
    second = RemotePlace(lab.address, lab.place, 60)
    got: dict[str, object] = {}

    def take() -> None:
        try:
            second.acquire()
            got["at"] = time.monotonic()
        except BaseException as error:  # reported by the assertion below
            got["error"] = error

    thread = threading.Thread(target=take)
    try:
        thread.start()
        time.sleep(4)
        assert "at" not in got and "error" not in got, got  # still waiting its turn
        released_at = time.monotonic()
        first.release()
        thread.join(timeout=120)
        # it got the place on the release, not by its 60 s bound running out (which fails)
        assert "at" in got, got
        assert float(got["at"]) >= released_at  # type: ignore[arg-type]
        assert second.waited >= 3.5
        assert set(second.serial_ports()) == {"console", "relay"}
        assert f"/{second.user}" in lab.client("-p", lab.place, "show")
    finally:
        first.release()
        thread.join(timeout=90)
        second.release()
    err = capfd.readouterr().err
    assert "labgrid place bm-test is busy (held by " in err and f"/{first.user})" in err, err
    assert reservations(lab) == []


def test_second_run_fails_clearly_after_its_bound(lab: SimLab) -> None:
    first = RemotePlace(lab.address, lab.place, 0)
    first.acquire()
    try:
        second = RemotePlace(lab.address, lab.place, 2)
        start = time.monotonic()
        with pytest.raises(BootError) as info:
            second.acquire()
        assert time.monotonic() - start < 60  # 2 s bound, plus labgrid-client start-up under load
        message = str(info.value)
        assert f"labgrid place bm-test on {lab.address} is not free: held by " in message
        assert f"/{first.user}; waited 2 s (physical.lock_wait sets how long)" in message
        assert not second.acquired and second.token is None
        assert reservations(lab) == [first_token(lab, first)]  # the second one is cancelled
        # Without waiting at all (lock_wait: 0) it fails at once, with the same message.
        with pytest.raises(BootError, match=r"is not free: held by .*; waited 0 s"):
            RemotePlace(lab.address, lab.place, 0).acquire()
    finally:
        first.release()
    assert reservations(lab) == []


def first_token(lab: SimLab, place: RemotePlace) -> str:
    assert place.token is not None
    return place.token


def test_unknown_place_is_named(lab: SimLab) -> None:
    with pytest.raises(BootError, match="the coordinator has no place nowhere"):
        RemotePlace(lab.address, "nowhere", 0).acquire()
    assert reservations(lab) == []


def test_show_output_is_parsed() -> None:
    show = """Place 'p':
  acquired: vm/u1
Acquired resource 'console' (bm-sim/box/NetworkSerialPort/console):
  {'acquired': 'p',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'path': '/dev/pts/1', 'proxy': 'localhost'},
              'host': '127.0.0.1',
              'port': 42431,
              'speed': 115200}}
Acquired resource 'relay' (bm-sim/box/NetworkSerialPort/relay):
  {'acquired': 'p', 'cls': 'NetworkSerialPort',
   'params': {'host': '127.0.0.1', 'port': None, 'speed': 9600}}
Acquired resource 'power' (bm-sim/box/NetworkPowerPort/power):
  {'acquired': 'p', 'cls': 'NetworkPowerPort', 'params': {'host': 'x'}}
"""
    assert parse_ports(show) == {"console": "rfc2217://127.0.0.1:42431?ign_set_control",
                                 "relay": None}


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def read_steps(out: Path) -> str:
    return "".join(p.read_text() for p in sorted((out / "logs").glob("*/*/boot-info.txt")))


# -- the suites through the place ---------------------------------------------------------
def suites_argv(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(ROOT / "suites"), f"--rootdir={ROOT}",
            "-c", str(ROOT / "pyproject.toml"), "--target=sim-skylake-remote",
            f"--bm-logs={out / 'logs'}", f"--bm-history={out / 'history.sqlite'}",
            f"--junitxml={out / 'junit.xml'}", "-p", "no:cacheprovider", "-rs",
            # the board's 60 s for the first console byte is for an idle host; here two
            # TCG boxes and other jobs share two cores: slow is not a missing console
            "--bm-set", "timeouts.firmware=300",
            "-W", "ignore::DeprecationWarning", *args]


@pytest.fixture
def remote_board_lab(make_lab: MakeLab) -> SimLab:
    """The lab behind boards/sim-skylake-remote.yaml (its run dir is fixed by the board)."""
    return make_lab(REMOTE_BOARD, Path("/tmp/bm-sim/sim-skylake-remote"))


def test_suites_pass_through_the_place(remote_board_lab: SimLab, pytester: pytest.Pytester,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    lab = remote_board_lab
    monkeypatch.setenv("LG_COORDINATOR", lab.address)
    result = pytester.runpytest_subprocess(*suites_argv(pytester.path)[3:], timeout=900)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, \
        result.stdout.str()[-4000:]
    assert outcomes.get("passed", 0) >= 30, outcomes
    infos = list((pytester.path / "logs").glob("*/*/boot-info.txt"))
    assert infos and all("console rfc2217://127.0.0.1:" in p.read_text() for p in infos)
    # The run gave the place back and cancelled its reservation; the box is off.
    assert "acquired: None" in lab.client("-p", lab.place, "show")
    assert reservations(lab) == []
    assert not (lab.run_dir / "machine-on").exists()


def test_two_runs_share_the_place_one_after_the_other(remote_board_lab: SimLab,
                                                      tmp_path: Path) -> None:
    """The first run holds the place while it boots; the second (given the coordinator by
    --lg-coordinator rather than the environment) waits its turn, then passes too."""
    lab = remote_board_lab
    env = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
    subset = ("-k", "banner_names_the_build or run_ends_cleanly")
    runs: list[subprocess.Popen[str]] = []
    try:
        # -s: the second run's "waiting for the place" notice reaches its stderr even where
        # plugin.py does not route it past capture (remote.route_notices)
        for name, extra in (("first", ()), ("second", ("-s", "--lg-coordinator", lab.address))):
            out = tmp_path / name
            out.mkdir()
            run_env = dict(env, LG_COORDINATOR=lab.address) if name == "first" else env
            runs.append(subprocess.Popen(suites_argv(out, *subset, *extra), cwd=out,
                                         env=run_env, text=True, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, start_new_session=True))
            if name == "first":  # the second starts once the first holds the place
                assert wait_for(lambda: "acquired: None" not in
                                lab.client("-p", lab.place, "show"), 180)
        done = [(run.communicate(timeout=600), run.returncode) for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
    (first_out, first_err), first_rc = done[0]
    (second_out, second_err), second_rc = done[1]
    assert first_rc == 0, first_out[-3000:] + first_err[-2000:]
    assert second_rc == 0, second_out[-3000:] + second_err[-2000:]
    assert "2 passed" in first_out and "2 passed" in second_out
    notice = "labgrid place sim-skylake-remote is busy (held by "
    assert notice in second_out + second_err, second_err[-2000:]
    assert "is busy" not in first_out + first_err
    # Each run says in its boot-info how it got the place; the second waited for the first.
    first_steps = read_steps(tmp_path / "first")
    second_steps = read_steps(tmp_path / "second")
    assert "labgrid place sim-skylake-remote on 127.0.0.1:" in first_steps
    assert "after waiting" not in first_steps
    waited = re.search(r"after waiting ([\d.]+) s \(held by \S+/bm-(\d+)-", second_steps)
    assert waited is not None, second_steps
    assert float(waited[1]) >= 5 and int(waited[2]) == runs[0].pid, second_steps
    assert reservations(lab) == []
    assert "acquired: None" in lab.client("-p", lab.place, "show")


def test_cancelled_run_switches_off_and_gives_the_place_back(remote_board_lab: SimLab,
                                                             tmp_path: Path) -> None:
    """SIGTERM (a cancelled CI job) mid-run: the box is switched off, the place released
    and the reservation cancelled, so the next run need not wait for anything."""
    lab = remote_board_lab
    env = dict(os.environ, LG_COORDINATOR=lab.address)
    run = subprocess.Popen(suites_argv(tmp_path, "-k", "test_boot"), cwd=tmp_path, env=env,
                           text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           start_new_session=True)
    try:
        assert wait_for(lambda: (lab.run_dir / "machine-on").exists(), 180)
        assert "acquired: None" not in lab.client("-p", lab.place, "show")
        run.send_signal(signal.SIGTERM)
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode != 0, out[-2000:]
    assert "acquired: None" in lab.client("-p", lab.place, "show"), out[-2000:]
    assert reservations(lab) == []
    assert not (lab.run_dir / "machine-on").exists()


def test_notices_reach_the_terminal_past_capture(pytester: pytest.Pytester) -> None:
    """With remote.route_notices(config) (what plugin.py's pytest_configure calls), the
    "waiting for the place" line shows although pytest captures the test's output."""
    pytester.makeconftest("""
from pytest_baremetal.targets.physical import remote

def pytest_configure(config):
    remote.route_notices(config)
""")
    pytester.makepyfile("""
from pytest_baremetal.targets.physical import remote

def test_waits():
    remote._notice("labgrid place p is busy (held by h/u); waiting up to 9 s")
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["[[]pytest-baremetal[]] labgrid place p is busy (held by h/u)*"])

"""PXE through the plugin's own dnsmasq, end to end, on a network made by the test.

Two network namespaces, never the host's interfaces:

    bmlab-PID   the lab: its DHCP server (a second dnsmasq handing out 10.231.77.100-150)
                on lab0 = 10.231.77.1, a veth whose peer is a port of the bridge below
    bmpxe-PID   the test host's lab NIC: bridge br0 = 10.231.77.2, with ports
                  labport  the veth to the lab's DHCP server
                  bmtap0   the simulated box's NIC (a persistent tap QEMU opens)

The board is ``server: dnsmasq`` on ``br0``; the test enters ``bmpxe-PID`` (this thread
only) while ``boot_physical`` runs, so the processes the plugin starts there (the simulated
box and its QEMU, the plugin's proxy-DHCP/TFTP dnsmasq) live in it. The box gets its
address from the lab's server and its bootfile from the plugin's dnsmasq, which serves the
per-board TFTP root the plugin staged (not the simulator's folder), then the reference
guest runs to ``[done] status=ok``.

Needs root, /dev/net/tun, ``ip`` (iproute2), dnsmasq and QEMU; skips, saying which is
missing, otherwise. Every process, namespace and interface is gone when a test ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_baremetal import lifeline
from pytest_baremetal.boards import Board, load_board
from pytest_baremetal.build_under_test import BuildUnderTest, reference_guest
from pytest_baremetal.bus import EventBus
from pytest_baremetal.errors import BootError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import Profile, load_profile
from pytest_baremetal.session import REFERENCE_PROFILE
from pytest_baremetal.targets import BootRequest
from pytest_baremetal.targets.physical import lab as lab_mod
from pytest_baremetal.targets.physical.pxe import unreachable_by_others
from pytest_baremetal.targets.physical.target import boot_physical

pytest.importorskip("serial")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

SUBNET = "10.231.77.0"
LAB_IP = "10.231.77.1"
PXE_IP = "10.231.77.2"
MAC = "52:54:00:5b:1a:77"
TAP = "bmtap0"
CLONE_NEWNET = 0x40000000


def _missing() -> str | None:
    """Why this host cannot build the test network, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (network namespaces, a bridge and a tap device)"
    for tool, package in (("ip", "iproute2"), ("dnsmasq", "dnsmasq-base"),
                          ("qemu-system-x86_64", "qemu-system-x86")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package})"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun is missing (no tun/tap support)"
    probe = f"bmprobe-{os.getpid()}"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        for args in (("link", "add", "br0", "type", "bridge"),
                     ("tuntap", "add", "dev", TAP, "mode", "tap")):
            done = _ip("-n", probe, *args)
            if done.returncode != 0:
                return f"ip {' '.join(args)} failed in a namespace: {done.stderr.strip()}"
    finally:
        _ip("netns", "del", probe)
    return None


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20,
                          check=False)


def _must(*args: str) -> None:
    done = _ip(*args)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """This thread (and every process it starts meanwhile) is in ``netns``."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net", "rb") as home, \
            open(f"/run/netns/{netns}", "rb") as there:
        if libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns}")
        try:
            yield
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:  # pragma: no cover
                raise OSError(ctypes.get_errno(), "setns back to the test's namespace")


@dataclass
class LabNet:
    pxe_ns: str
    lab_ns: str
    run: Path
    lab_log: Path
    lab_server: subprocess.Popen[bytes] | None = None

    def build(self) -> None:
        for ns in (self.pxe_ns, self.lab_ns):
            _must("netns", "add", ns)
            _must("-n", ns, "link", "set", "lo", "up")
        n = ("-n", self.pxe_ns)
        _must(*n, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
        _must(*n, "addr", "add", f"{PXE_IP}/24", "dev", "br0")
        _must(*n, "link", "set", "br0", "up")
        _must(*n, "link", "add", "labport", "type", "veth", "peer", "name", "lab0",
              "netns", self.lab_ns)
        _must(*n, "link", "set", "labport", "master", "br0", "up")
        _must(*n, "tuntap", "add", "dev", TAP, "mode", "tap")
        _must(*n, "link", "set", TAP, "master", "br0", "up")
        _must("-n", self.lab_ns, "addr", "add", f"{LAB_IP}/24", "dev", "lab0")
        _must("-n", self.lab_ns, "link", "set", "lab0", "up")

    def start_lab_dhcp(self) -> None:
        """The lab's own DHCP server: addresses only, no boot information."""
        argv = ["ip", "netns", "exec", self.lab_ns, "dnsmasq", "--keep-in-foreground",
                "--conf-file=/dev/null", "--port=0", "--interface=lab0", "--bind-interfaces",
                f"--dhcp-range={SUBNET[:-1]}100,{SUBNET[:-1]}150,255.255.255.0,10m",
                f"--dhcp-leasefile={self.run / 'lab.leases'}",
                f"--pid-file={self.run / 'lab.pid'}",
                f"--log-facility={self.lab_log}", "--log-dhcp"]
        with open(self.run / "lab.stderr", "wb") as err:
            self.lab_server = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err,
                                               stderr=err, start_new_session=True)
        deadline = time.monotonic() + 10
        while "sockets bound" not in _text(self.lab_log):
            if self.lab_server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the lab's DHCP server did not start: "
                                   + _text(self.run / "lab.stderr") + _text(self.lab_log))
            time.sleep(0.05)

    def pids(self) -> list[str]:
        out: list[str] = []
        for ns in (self.pxe_ns, self.lab_ns):
            out += _ip("netns", "pids", ns).stdout.split()
        return out

    def teardown(self) -> list[str]:
        """Stops the lab's server, kills whatever still runs in the namespaces, deletes
        them (their interfaces go with them); returns what had to be killed."""
        server, self.lab_server = self.lab_server, None
        if server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        leftovers = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                leftovers.append(Path(f"/proc/{pid}/cmdline").read_bytes()
                                 .replace(b"\0", b" ").decode(errors="replace"))
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        for ns in (self.pxe_ns, self.lab_ns):
            _ip("netns", "del", ns)
        return leftovers


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def labnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LabNet]:
    reason = _missing()
    if reason is not None:
        pytest.skip(f"PXE through dnsmasq in a network namespace: {reason}")
    monkeypatch.setenv("BM_LOCK_DIR", str(tmp_path / "locks"))
    tag = f"{os.getpid()}-{abs(hash(tmp_path)) % 10000}"
    # not under tmp_path: dnsmasq serves TFTP as nobody, who cannot enter pytest's 0700 base
    run = Path("/tmp") / f"bm-dnsmasqtest-{tag}"
    run.mkdir(mode=0o755)
    run.chmod(0o755)
    lifeline.start()  # not from inside a namespace, where it would count as a leftover
    net = LabNet(pxe_ns=f"bmpxe-{tag}", lab_ns=f"bmlab-{tag}", run=run,
                 lab_log=run / "lab-dhcp.log")
    try:
        net.build()
        net.start_lab_dhcp()
        yield net
    finally:
        lab_mod.release_all()
        leftovers = net.teardown()
        shutil.rmtree(run, ignore_errors=True)
        names = {n.split()[0] for n in _ip("netns", "list").stdout.splitlines() if n.strip()}
    assert not leftovers, f"processes outlived the test in its namespaces: {leftovers}"
    assert net.pxe_ns not in names and net.lab_ns not in names


def board_file(net: LabNet, name: str, server: str = "dnsmasq") -> Board:
    run = net.run
    path = run / f"{name}.yaml"
    path.write_text(f"""kind: physical
features: [avx2, repl]
timeouts: {{firmware: 60, boot: 150, run: 300}}
physical:
  console: {{device: {run}/box/console, reconnect: 20}}
  power:
    lcus: {{device: {run}/box/relay, channel: 1, query: true}}
    sense: [test, -e, {run}/box/machine-on]
  boot:
    pxe: {{tftp_root: {run}/pxe-root, bootfile: boot.ipxe, server: {server}, ipxe: true,
          interface: br0, subnet: {SUBNET}}}
  mac: "{MAC}"
  off_wait: 0.2
  sim: {{run_dir: {run}/box, tap: {TAP}}}
""")
    return load_board(path)


@pytest.fixture
def env() -> tuple[Profile, BuildUnderTest]:
    return load_profile(REFERENCE_PROFILE), reference_guest(ROOT)


def test_box_pxe_boots_through_the_plugins_dnsmasq(
        tmp_path: Path, labnet: LabNet, env: tuple[Profile, BuildUnderTest]) -> None:
    profile, build = env
    board = board_file(labnet, "dnsbox")
    config = GuestConfig.of({"steps": 8, "bench": 0}, "t")
    start = time.monotonic()
    with inside(labnet.pxe_ns):
        dut = boot_physical(board, BootRequest(config, tmp_path / "unused.img",
                                               tmp_path / "logs", profile, build, EventBus()))
    try:
        booted = time.monotonic() - start
        assert dut.wait_done(timeout=240).fields["status"] == "ok"
        print(f"banner {booted:.1f} s after power-on, done {time.monotonic() - start:.1f} s")
    finally:
        dut.close()
    lab = lab_mod._labs[board.name]
    assert lab.dnsmasq is not None and lab.dnsmasq.proc is not None
    served = _text(lab.dnsmasq.log)
    lab_log = _text(labnet.lab_log)
    # the lab's server gave the address and nothing to boot; the plugin's gave the bootfile
    assert f"DHCPACK(lab0) {SUBNET[:-1]}1" in lab_log and MAC in lab_log
    assert f"PXE(br0) {MAC} proxy" in served and "bootfile name: boot.ipxe" in served
    # TFTP came from the plugin's staged per-board root, not the simulator's own folder
    root = labnet.run / "pxe-root"
    for name in ("boot.ipxe", "app.efi", "run.cfg"):
        assert f"sent {root / name} to {SUBNET[:-1]}1" in served, served[-3000:]
    assert not any((labnet.run / "box" / "tftp").iterdir())
    # nothing written outside the service's own folder (not even /var/lib/misc's leases)
    assert f"--dhcp-leasefile={lab.dnsmasq.log.parent / 'dnsmasq.leases'}" in lab.dnsmasq.argv
    service = lab.dnsmasq
    lab_mod.release_all()
    assert service.proc is None
    assert not service.log.parent.exists(), "the service's folder outlived the release"


def test_pxe_without_the_plugins_service_fails_with_the_firmwares_error(
        tmp_path: Path, labnet: LabNet, env: tuple[Profile, BuildUnderTest]) -> None:
    profile, build = env
    # server external: the plugin stages but runs no PXE service, and the lab's DHCP server
    # gives an address and no bootfile, as on a lab network where our dnsmasq is not running
    board = board_file(labnet, "nopxebox", server="external")
    start = time.monotonic()
    with inside(labnet.pxe_ns), pytest.raises(BootError) as info:
        boot_physical(board, BootRequest(GuestConfig.of({}, "t"), tmp_path / "unused.img",
                                         tmp_path / "logs", profile, build, EventBus()))
    took = time.monotonic() - start
    print(f"PXE failure reported {took:.1f} s after power-on: {info.value}")
    assert "PXE boot failed, the firmware said" in str(info.value)
    assert "boot.ipxe" in str(info.value)
    assert took < 120
    assert lab_mod._labs[board.name].dnsmasq is None
    assert not (labnet.run / "box" / "machine-on").exists()       # switched off
    steps = (tmp_path / "logs" / "boot-info.txt").read_text()
    assert "failed: " in steps and steps.rstrip().endswith("power off")


def test_a_tftp_root_nobody_can_reach_is_found() -> None:
    base = Path(tempfile.mkdtemp(prefix="bm-reach-", dir="/tmp"))
    try:
        base.chmod(0o700)
        (base / "root").mkdir(mode=0o755)
        assert unreachable_by_others(base / "root") == base
        base.chmod(0o755)
        (base / "root").chmod(0o711)                    # passable, not listable
        assert unreachable_by_others(base / "root") == base / "root"
        (base / "root").chmod(0o755)
        assert unreachable_by_others(base / "root") is None
        assert unreachable_by_others(base / "missing") == base / "missing"
    finally:
        shutil.rmtree(base)

"""Real QEMU, the fixture guest: boot, exit, hang, crash, death, and accelerator failure.

Every QEMU started here is stopped by the ``qemu_boot`` fixture even when a test fails.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_baremetal.boards import load_board
from pytest_baremetal.errors import BootError, ConfigError
from pytest_baremetal.targets.qemu import reaper
from pytest_baremetal.targets.qemu.fallback import classify
from pytest_baremetal.targets.qemu.process import QemuProcess, launch
from pytest_baremetal.targets.qemu.spec import Firmware, qemu_board, tcg_fallback

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/usr/bin/qemu-system-x86_64").exists()
                       and "BM_QEMU" not in os.environ, reason="QEMU is not installed"),
]
BOARDS = Path(__file__).resolve().parent.parent / "boards"
TCG = qemu_board("fixture-tcg", accel="tcg", cpu="Skylake-Client", memory=256)
BOOT = 90.0  # generous: two shared cores, other QEMUs running
Boot = Callable[..., QemuProcess]
Image = Callable[[str], Path]
Gone = Callable[[int], bool]
kvm_only = pytest.mark.skipif(not os.path.exists("/dev/kvm"),
                              reason="/dev/kvm is absent: no KVM to fail or fall back from")


def read_until(sock: socket.socket, needle: bytes, timeout: float = BOOT) -> bytes:
    """Everything read until ``needle`` (or EOF / timeout: then the test fails)."""
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"{needle!r} not seen in {timeout} s; got {data[-500:]!r}")
        ready, _, _ = select.select([sock], [], [], remaining)
        if ready:
            chunk = sock.recv(65536)
            if not chunk:
                pytest.fail(f"console closed before {needle!r}; got {data[-500:]!r}")
            data += chunk
    return data


def test_boot_to_last_line_and_clean_exit(process_gone: Gone, qemu_boot: Boot,
        fixture_image: Image) -> None:
    proc = qemu_boot(TCG, fixture_image("lines 4"))
    assert proc.status() == "prelaunch"        # -S: nothing ran before we attached
    proc.resume()
    data = read_until(proc.serial_socket, b"[fixture] shutdown")
    assert b"[fixture] start mode=lines 4" in data
    for i in range(1, 5):
        assert f"[fixture] line {i} of 4\r\n".encode() in data
    assert proc.wait(BOOT) == 0                 # ResetSystem(shutdown) + -no-reboot: exits
    assert "SHUTDOWN" in proc.qmp.event_names() if proc.qmp else False
    pid = proc.pid
    assert pid is not None and proc.stop() == 0
    assert process_gone(pid) and pid not in reaper.live()
    assert (proc.log_dir / "qemu.cmdline").read_text().startswith(proc.argv[0])


def test_stop_on_a_hung_guest_leaves_nothing(process_gone: Gone, qemu_boot: Boot,
        fixture_image: Image) -> None:
    proc = qemu_boot(TCG, fixture_image("hang"))
    proc.resume()
    read_until(proc.serial_socket, b"[fixture] hanging")
    assert proc.wait(1.0) is None and proc.status() == "running"
    pid = proc.pid
    assert pid is not None
    code = proc.stop()
    assert code is not None and process_gone(pid) and pid not in reaper.live()
    assert proc.stop() == code                  # idempotent
    assert proc.status() is None


def test_crash_prints_the_exception_dump(qemu_boot: Boot, fixture_image: Image) -> None:
    proc = qemu_boot(TCG, fixture_image("crash"))
    proc.resume()
    data = read_until(proc.serial_socket, b"!!!! Find image")
    assert b"[fixture] crashing" in data and b"X64 Exception Type - 06(#UD" in data


def test_echo_mode_round_trip(qemu_boot: Boot, fixture_image: Image) -> None:
    proc = qemu_boot(TCG, fixture_image("echo"))
    proc.resume()
    sock = proc.serial_socket
    read_until(sock, b"[fixture] echo ready")
    sock.sendall(b"hello world\r")
    read_until(sock, b"[fixture] echo: hello world", 30)
    sock.sendall(b"quit\r")
    read_until(sock, b"[fixture] bye", 30)
    assert proc.wait(30) == 0


def test_qemu_killed_before_resume_is_a_boot_error(qemu_boot: Boot,
                                                   fixture_image: Image) -> None:
    proc = qemu_boot(TCG, fixture_image("lines 3"))
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    with pytest.raises(BootError, match=r"QEMU exited before the guest could run.*exit code -9"):
        proc.resume()


def test_qemu_killed_mid_boot(qemu_boot: Boot, fixture_image: Image) -> None:
    proc = qemu_boot(TCG, fixture_image("hang"))
    proc.resume()
    assert proc.pid is not None
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    assert proc.status() is None
    sock = proc.serial_socket
    sock.settimeout(10)
    while sock.recv(65536):                      # the console sees end of stream
        pass
    assert proc.stop() == -signal.SIGKILL


def test_missing_firmware_fails_before_spawning(tmp_path: Path, fixture_image: Image) -> None:
    board = qemu_board("bad-fw", firmware=Firmware(unified=tmp_path / "nope" / "OVMF.fd"))
    before = reaper.live()
    with pytest.raises(ConfigError, match=r"firmware file .*nope/OVMF\.fd does not exist"):
        launch(board, fixture_image("lines 1"), tmp_path / "log")
    assert not (tmp_path / "log" / "qemu.stderr").exists()
    assert reaper.live() == before


def test_qemu_that_cannot_start_is_a_boot_error(tmp_path: Path, fixture_image: Image) -> None:
    board = qemu_board("bad-arg", extra_args=("-no-such-option",))
    with pytest.raises(BootError, match=r"(?s)exited before connecting.*no-such-option"):
        launch(board, fixture_image("lines 1"), tmp_path)


REAPED = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pytest_baremetal.targets.qemu.spec import qemu_board
    from pytest_baremetal.targets.qemu.process import launch
    proc = launch(qemu_board("orphan", memory=256), Path(sys.argv[1]), Path(sys.argv[2]))
    print(proc.pid, flush=True)
    time.sleep(120)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_reaper_kills_qemu_when_python_is_signalled(process_gone: Gone, tmp_path: Path,
        fixture_image: Image, sig: signal.Signals) -> None:
    child = subprocess.Popen([sys.executable, "-c", REAPED, str(fixture_image("hang")),
                              str(tmp_path)], stdout=subprocess.PIPE, text=True)
    qemu_pid = 0
    try:
        assert child.stdout is not None
        qemu_pid = int(child.stdout.readline())
        assert not process_gone(qemu_pid)
        child.send_signal(sig)
        child.wait(30)
        assert process_gone(qemu_pid)
    finally:
        child.kill()
        child.wait()
        if qemu_pid and not process_gone(qemu_pid):
            os.killpg(qemu_pid, signal.SIGKILL)


@kvm_only
def test_kvm_board_fails_as_recorded_and_falls_back(qemu_boot: Boot, fixture_image: Image,
                                                   tmp_path: Path) -> None:
    kvm = load_board(BOARDS / "qemu-kvm.yaml")
    image = fixture_image("lines 2")
    started = time.monotonic()
    try:
        proc = qemu_boot(kvm, image)
    except BootError as error:
        assert error.log_path is not None
        reason = classify(error.log_path.read_text(), None, console_seen=False)
    else:
        proc.resume()
        if proc.wait(5) is None and proc.status() == "running":
            pytest.skip("KVM runs OVMF on this host: nothing to fall back from")
        reason = classify(proc.stderr_text(), proc.status(), console_seen=False)
    failed_after = time.monotonic() - started
    assert reason is not None and reason.startswith("kvm: "), reason
    print(f"kvm failure after {failed_after:.2f} s: {reason}")
    fallen = tcg_fallback(kvm)
    assert fallen.spec.accel == "tcg"
    proc = qemu_boot(fallen, image)
    proc.resume()
    read_until(proc.serial_socket, b"[fixture] done lines=2")


@kvm_only
def test_kvm_qemu64_pauses_with_internal_error(process_gone: Gone, qemu_boot: Boot,
        fixture_image: Image) -> None:
    board = qemu_board("kvm-qemu64", accel="kvm", cpu="qemu64", memory=256)
    try:
        proc = qemu_boot(board, fixture_image("lines 1"))
    except BootError as error:
        pytest.skip(f"KVM refused earlier on this host: {error.reason.splitlines()[0]}")
    proc.resume()
    deadline = time.monotonic() + 20
    status = proc.status()
    while status == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = proc.status()
    if status == "running":
        pytest.skip("KVM runs OVMF with qemu64 on this host")
    assert status == "internal-error"
    assert proc.returncode is None               # paused, not exited: it must be killed
    reason = classify(proc.stderr_text(), status, console_seen=False)
    assert reason == "kvm: internal error (suberror 1)"
    pid = proc.pid
    assert pid is not None
    proc.stop()
    assert process_gone(pid)

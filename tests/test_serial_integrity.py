"""Nothing printed by the guest is lost or repeated when the host reads the console late.

QEMU's UART stalls when its chardev cannot take a byte, and the firmware's serial driver
then times out, dropping or repeating bytes. The plugin reads the serial console over a
TCP socket with a large buffer so that a reader seconds late (a loaded CI host) loses
nothing."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_baremetal.targets.physical.lcus import LcusRelay
from pytest_baremetal.targets.qemu.process import QemuProcess
from pytest_baremetal.targets.qemu.spec import qemu_board

TCG = qemu_board("t", accel="tcg", cpu="max")
LINES = 400
SIM_LINES = 5000  # about 150 KB: many times what a pty holds


def test_a_reader_seconds_late_loses_nothing(
        qemu_boot: Callable[..., QemuProcess], fixture_image: Callable[[str], Path]) -> None:
    proc = qemu_boot(TCG, fixture_image(f"lines {LINES}"))
    sock = proc.take_serial_socket()
    try:
        proc.resume()
        time.sleep(8)  # the guest prints everything while nobody reads
        sock.settimeout(60)
        data = b""
        while b"done lines=" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    numbers = [int(n) for n in re.findall(rb"\[fixture\] line (\d+) of \d+\r?\n", data)]
    gap = next((a for a, b in itertools.pairwise(numbers) if b != a + 1), None)
    assert numbers == list(range(1, LINES + 1)), f"{len(numbers)} intact lines; gap after {gap}"


def test_the_simulated_adapter_loses_nothing_for_a_late_reader(
        fixture_image: Callable[[str], Path], tmp_path: Path) -> None:
    """The simulated box's console pty holds a few KB; QEMU writes far faster than the
    plugin may read on a loaded host. The simulator keeps what the pty cannot take yet."""
    serial = pytest.importorskip("serial")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    run = tmp_path / "box"
    run.mkdir()
    shutil.copy(fixture_image(f"lines {SIM_LINES}"), run / "disk.img")
    box = subprocess.Popen([sys.executable, "-m", "pytest_baremetal.targets.physical.sim",
                            "--run-dir", str(run)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    relay = LcusRelay(lambda: str(run / "relay"), 1, query=True)
    try:
        deadline = time.monotonic() + 30
        while not (run / "ready").exists():
            assert box.poll() is None and time.monotonic() < deadline, "the box did not start"
            time.sleep(0.1)
        data = b""
        # opened before power-on, as the plugin does (opening a port discards what it held)
        with serial.Serial(str(run / "console"), 115200, timeout=0.5) as port:
            relay.set(True)
            time.sleep(10)  # the guest prints everything while nobody reads
            deadline = time.monotonic() + 90
            while b"done lines=" not in data and time.monotonic() < deadline:
                data += port.read(65536)
        relay.set(False)
    finally:
        relay.close()
        box.terminate()
        box.wait(timeout=20)
    numbers = [int(n) for n in re.findall(rb"\[fixture\] line (\d+) of \d+\r?\n", data)]
    gap = next((a for a, b in itertools.pairwise(numbers) if b != a + 1), None)
    at = data.find(b"line %d of" % gap) if gap is not None else -1
    assert numbers == list(range(1, SIM_LINES + 1)), (
        f"{len(numbers)} intact lines of {SIM_LINES}; gap after {gap}: "
        f"{data[max(0, at - 40):at + 120]!r}")

"""Nothing printed by the guest is lost or repeated when the host reads the console late.

QEMU's UART stalls when its chardev cannot take a byte, and the firmware's serial driver
then times out, dropping or repeating bytes. The plugin reads the serial console over a
TCP socket with a large buffer so that a reader seconds late (a loaded CI host) loses
nothing."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from pathlib import Path

from pytest_baremetal.targets.qemu.process import QemuProcess
from pytest_baremetal.targets.qemu.spec import qemu_board

TCG = qemu_board("t", accel="tcg", cpu="max")
LINES = 400


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

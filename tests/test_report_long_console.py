"""A console longer than the memory window still reaches the Allure report whole: the
reporter attaches the cleaned ``.console.txt`` and the raw log from disk."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("allure_pytest")

ROOT = Path(__file__).resolve().parents[1]
LINES = 4000

CONFTEST = '''
import time
import pytest
from pytest_baremetal import reporting
from pytest_baremetal.build_under_test import BuildUnderTest
from pytest_baremetal.bus import EventBus
from pytest_baremetal.console import Console
from pytest_baremetal.console import console as console_mod
from pytest_baremetal.dut import BootInfo, Dut
from pytest_baremetal.console.transport import BytesTransport
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import load_profile
from pytest_baremetal.session import REFERENCE_PROFILE
from pytest_baremetal.targets.qemu.spec import qemu_board

console_mod.WINDOW_CHARS = 32 * 1024  # a small window: the boot below is ~10 times longer
console_mod.HEAD_LINES = 20
LINES = @LINES@
DATA = (b"[boot] name=long version=1 build=b1\\r\\n"
        + b"".join(b"PROGRESS: line %05d " % i + b"y" * 60 + b"\\r\\n" for i in range(LINES))
        + b"[done] status=ok\\r\\n" + b"tail without newline")
BUS = EventBus()


class Power:
    def wait_off(self, timeout): return 0
    def off(self): pass
    def is_on(self): return False


def pytest_configure(config):
    reporting.enable(config, BUS)


@pytest.fixture
def dut(request, tmp_path):
    profile = load_profile(REFERENCE_PROFILE)
    console = Console(BytesTransport(DATA, chunk=4096), tmp_path, profile, "console").start()
    info = BootInfo(board="qemu-tcg", accelerator="tcg", requested_accelerator="tcg",
                    log_dir=tmp_path, started_at=time.monotonic())
    (tmp_path / "app.efi").write_bytes(b"MZ")
    made = Dut(qemu_board("qemu-tcg"), GuestConfig(), console, Power(), profile, info,
               BuildUnderTest(efi=tmp_path / "app.efi"), bus=BUS)
    request.node.stash.setdefault(reporting.DUTS_KEY, []).append(made)
    yield made
    made.close()
'''.replace("@LINES@", str(LINES))

TESTS = '''
def test_long_boot(dut):
    dut.console.first_event("done", 30)
    dut.console.wait_until(lambda: dut.console.closed or None, "the end", 30)
    assert dut.console.line_count == LINES + 2
    assert len(dut.console.lines) < LINES // 2  # the window is in force
'''


def test_long_console_is_attached_whole(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_long.py").write_text(TESTS.replace("LINES", str(LINES)))
    results = tmp_path / "allure-results"
    argv = [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "-p", "no:baremetal",
            "-p", "no:cacheprovider", f"--alluredir={results}", "-q"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    [result] = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    files = {a["name"]: results / a["source"] for a in result["attachments"]}
    cleaned = files["console qemu-tcg"].read_text().splitlines()
    assert cleaned[0] == "[boot] name=long version=1 build=b1"
    assert len(cleaned) == LINES + 3  # banner, every progress line, done, the partial tail
    assert cleaned[LINES // 2] == f"PROGRESS: line {LINES // 2 - 1:05d} " + "y" * 60
    assert cleaned[-1] == "tail without newline"
    raw = files["console qemu-tcg (raw, timestamped)"].read_bytes()
    assert raw.count(b"\r\n") == LINES + 2
    assert b"PROGRESS: line 00000 " in raw and b"tail without newline" in raw

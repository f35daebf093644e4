"""The run budget printed with -v: boots, their phases, pytest phases (fixture guest)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PROFILE = ROOT / "tests" / "data" / "fixture-profile.yaml"

SOURCE = """
def test_one(dut):
    assert dut.event("line", n=2).fields["total"] == 2

def test_two(dut):
    dut.wait_power_off()
"""


def run(pytester: pytest.Pytester, efi: Path, *extra: str) -> pytest.RunResult:
    mode_file = pytester.path / "mode.txt"
    mode_file.write_text("lines 2\n")
    pytester.makepyfile(test_guest=SOURCE)
    return pytester.runpytest_subprocess(
        "--target=qemu-tcg", f"--bm-boards={ROOT / 'boards'}", f"--bm-efi={efi}",
        f"--bm-file=mode.txt={mode_file}", f"--bm-profile={FIXTURE_PROFILE}",
        f"--bm-logs={pytester.path / 'logs'}", "-p", "no:cacheprovider", *extra, timeout=120)


def test_budget_with_v_and_not_without(pytester: pytest.Pytester, fixture_efi: Path) -> None:
    verbose = run(pytester, fixture_efi, "-v")
    verbose.assert_outcomes(passed=2)
    out = verbose.stdout.str()
    assert "baremetal budget" in out, out
    assert "1 boot(s), 1 used by tests" in out, out  # two tests, one shared boot
    row = re.search(r"^  qemu-tcg \[default\]\s+([\d.]+)\s+(\S+)\s+(\S+)\s+([\d.]+)$", out, re.M)
    assert row, out
    firmware, total = float(row.group(1)), float(row.group(4))
    assert 0 < firmware <= total, row.group(0)
    phases = re.search(r"^pytest phases \(s\): setup ([\d.]+), call ([\d.]+), teardown ([\d.]+)",
                       out, re.M)
    assert phases and float(phases.group(1)) > 0, out  # the boot happens in a setup

    quiet = run(pytester, fixture_efi)
    quiet.assert_outcomes(passed=2)
    assert "baremetal budget" not in quiet.stdout.str()

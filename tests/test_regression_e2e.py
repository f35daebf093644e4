"""The performance suite against its own history: a few ordinary runs pass and build the
baseline; a run with a 10% slowdown injected into the guest fails with the explanation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

#: a steady measurement: no benchmarks, several timed repeats of a short generation (the
#: icount board makes tok/s noise-free, so 24 steps tell a 10% slowdown as well as 64)
GUEST = ["--bm-guest", "bench=0", "--bm-guest", "repeats=5", "--bm-guest", "steps=24"]


def icount_board(folder: Path) -> Path:
    """boards/qemu-tcg-icount.yaml with 64 ns per instruction instead of 8 (shift 6, not 3).

    tok/s stays instruction-counted and noise-free; OVMF's busy-wait stalls (virtual time)
    then take 8x fewer emulated instructions: firmware 6 s instead of 29 s on a loaded host.
    """
    text = (ROOT / "boards" / "qemu-tcg-icount.yaml").read_text()
    assert "shift=3," in text, "boards/qemu-tcg-icount.yaml changed: update this test"
    folder.mkdir(exist_ok=True)
    (folder / "qemu-tcg-icount.yaml").write_text(text.replace("shift=3,", "shift=6,"))
    return folder


def run_perf(pytester: pytest.Pytester, history: Path, *extra: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(ROOT / "suites" / "test_perf.py"), f"--rootdir={ROOT}", "-c",
        str(ROOT / "pyproject.toml"), "--target=qemu-tcg-icount",
        f"--bm-boards={icount_board(pytester.path / 'boards')}", f"--bm-history={history}",
        f"--bm-logs={pytester.path / 'logs'}", "-p", "no:cacheprovider", *GUEST, *extra,
        timeout=600)


def test_slowdown_fails_against_history(pytester: pytest.Pytester) -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (bash scripts/setup.sh)")
    history = pytester.path / "history.sqlite"
    for _ in range(3):
        run_perf(pytester, history).assert_outcomes(passed=3)
    slow = run_perf(pytester, history, "--bm-guest", "slowdown_pct=10")
    slow.assert_outcomes(passed=2, failed=1)
    text = slow.stdout.str()
    verdict = re.search(r"decode tok/s [\d.]+ vs [\d.]+ \((-[\d.]+)%, 95% CI [-\d.]+\.\.[-\d.]+%\)"
                        r": regression", text)
    assert verdict, text[-3000:]
    assert -20 < float(verdict.group(1)) < -4, verdict.group(0)

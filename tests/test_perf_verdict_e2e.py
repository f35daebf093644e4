"""On the noisy wall-clock board (qemu-tcg) a 50% slowdown reads as a regression or as
"inconclusive" with the power figure, never "no change"; --bm-metrics writes every figure
of the run as JSON lines and OpenMetrics; an untracked board records and never fails."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

GUEST = ["--bm-guest", "bench=0", "--bm-guest", "repeats=3", "--bm-guest", "steps=16"]


def run_perf(pytester: pytest.Pytester, history: Path, *extra: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        str(ROOT / "suites" / "test_perf.py"), f"--rootdir={ROOT}", "-c",
        str(ROOT / "pyproject.toml"), "--target=qemu-tcg", f"--bm-history={history}",
        f"--bm-logs={pytester.path / 'logs'}", "-p", "no:cacheprovider", "-rA", *GUEST,
        *extra, timeout=600)


def verdict_text(metrics: Path) -> str:
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    [verdict] = [r for r in rows if r["source"] == "verdict"]
    return str(verdict["text"])


def test_a_50_percent_slowdown_on_qemu_tcg_is_never_no_change(
        pytester: pytest.Pytester) -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (bash scripts/setup.sh)")
    history = pytester.path / "history.sqlite"
    for _ in range(3):
        run_perf(pytester, history).assert_outcomes(passed=3)
    metrics = pytester.path / "out" / "metrics.jsonl"
    slow = run_perf(pytester, history, "--bm-guest", "slowdown_pct=50",
                    f"--bm-metrics={metrics}")
    text = verdict_text(metrics)
    assert ": no change" not in text, text
    regression = re.search(r"\): regression \(detects changes of [\d.]+% or more at 80% power; "
                           r"noise CV [\d.]+%\)", text)
    inconclusive = re.search(r"\): inconclusive \(this board's noise \(CV [\d.]+%\) hides "
                             r"(changes under [\d.]+%|any change)", text)
    assert regression or inconclusive, text
    slow.assert_outcomes(passed=3 if inconclusive else 2, failed=0 if inconclusive else 1)

    # every figure of the run, with board, context and commit
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    perf = [r for r in rows if r["name"] == "decode_tok_s" and r["source"] == "guest [perf]"]
    assert len(perf) == 3, rows
    assert {r["board"] for r in perf} == {"qemu-tcg"}
    assert perf[0]["context"] == "tcg Skylake-Client" and perf[0]["unit"] == "tok/s"
    assert re.fullmatch(r"[0-9a-f]{40}", perf[0]["commit"]), perf[0]
    assert any(r["source"] == "test" and r["name"] == "decode_tok_s" for r in rows)
    prom = metrics.with_suffix(".prom").read_text()
    labels = f'{{board="qemu-tcg",context="tcg Skylake-Client",commit="{perf[0]["commit"]}"}}'
    assert "# TYPE bm_decode_tok_s gauge" in prom
    assert re.search(r"^bm_decode_tok_s" + re.escape(labels) + r" [\d.e+]+$", prom, re.M), prom
    assert re.search(r"^bm_decode_tok_s_verdict_regression" + re.escape(labels) + r" [01]$",
                     prom, re.M), prom
    assert prom.endswith("# EOF\n")

    # the same slowdown on a board that only records: never fails, says so
    untracked = run_perf(pytester, history, "--bm-guest", "slowdown_pct=50",
                         "--bm-set", "perf.track=false", f"--bm-metrics={metrics}")
    untracked.assert_outcomes(passed=3)
    assert "board not tracked: recorded, never fails" in verdict_text(metrics)

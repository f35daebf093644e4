"""Change points over the history: E-divisive with a permutation test, on synthetic series
with icount-like noise, in the store, on the command line and in the nightly check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_history_store import ctx

from pytest_baremetal.history import SqliteStore, finish_run, record_boot
from pytest_baremetal.history.changepoints import e_divisive, find_changes, new_slowdowns
from pytest_baremetal.history.noise import changepoint_rate, simulate_series

ROOT = Path(__file__).resolve().parents[1]
ICOUNT_CV = 0.005
"""Night-to-night CV of an icount series: the board itself gives 0.00% (see
benchmarks/README.md); 0.5% stands for the drift of unrelated guest changes."""


@pytest.mark.parametrize("kind", ["step:5", "step:10", "drift:1:5"])
def test_steps_of_5_percent_and_a_5_night_drift_are_found(kind: str) -> None:
    assert changepoint_rate(kind, ICOUNT_CV, trials=100, seed=3) >= 0.95


def test_flat_series_have_at_most_2_percent_false_change_points() -> None:
    assert changepoint_rate("flat", ICOUNT_CV, trials=150, seed=4) <= 0.02


def test_a_constant_series_is_never_split_and_a_step_is_located() -> None:
    assert e_divisive([118.3] * 30) == []
    values, where = simulate_series(np.random.default_rng(5), "step:10", 0.002)
    assert where is not None
    [(index, p)] = e_divisive(values)
    assert index == where[0] and p <= 0.01


def nightly(store: SqliteStore, night: int, level: float, commit: str) -> int:
    rng = np.random.default_rng(night)
    values = level * (1 + 0.002 * rng.standard_normal(5))
    run_id = record_boot(store, ctx(night * 24, git_commit=commit, session=f"n{night}"),
                         [{"repeat": i + 1, "decode_tok_s": float(v)}
                          for i, v in enumerate(values)])
    finish_run(store, run_id, True)
    return run_id


@pytest.fixture
def stepped(tmp_path: Path) -> Path:
    path = tmp_path / "h.sqlite"
    with SqliteStore(path) as store:
        for night in range(20):
            level = 118.0 if night < 12 else 112.0
            nightly(store, night, level, f"{night:02d}" + "c" * 38)
    return path


def test_history_changes_lists_commits_and_step(stepped: Path) -> None:
    with SqliteStore(stepped) as store:
        [change] = find_changes(store, ["decode_tok_s"])
    assert change.before.context.git_commit.startswith("11c")
    assert change.after.context.git_commit.startswith("12c")
    assert change.step_pct == pytest.approx(-5.1, abs=0.3) and change.slowdown
    out = subprocess.run([sys.executable, "-m", "pytest_baremetal", "history", "--changes",
                          "--store", str(stepped)], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert re.search(r"decode tok/s on qemu-tcg: 118 -> 112 \(-5\.\d%, slowdown", out), out
    assert "(11cccccccc," in out and "(12cccccccc," in out, out


def test_history_changes_without_any(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_baremetal.history.cli import main

    with SqliteStore(tmp_path / "h.sqlite") as store:
        for night in range(8):
            nightly(store, night, 118.0, "c")
    assert main(["--changes", "--store", str(tmp_path / "h.sqlite")]) == 0
    assert "no change points in the history of every board" in capsys.readouterr().out
    assert main(["--store", str(tmp_path / "h.sqlite")]) == 2  # --board is needed


def test_a_drift_fails_the_night_it_is_found_and_only_then(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "h.sqlite") as store:
        for night in range(20):
            nightly(store, night, 118.0, "flat")
        flagged = []
        for step in range(1, 8):  # 1% slower every night
            run = nightly(store, 20 + step, 118.0 * 0.99**step, f"drift{step}")
            flagged.append(bool(new_slowdowns(store, [run], "decode_tok_s", 0.02)))
    assert flagged.count(True) == 1, flagged
    assert flagged.index(True) <= 4, flagged  # within the 5-night drift


def test_a_speed_up_and_a_tiny_step_never_fail(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "h.sqlite") as store:
        for night in range(15):
            nightly(store, night, 118.0, "flat")
        fast = [nightly(store, 15 + n, 125.0, "fast") for n in range(3)]
        assert not new_slowdowns(store, fast, "decode_tok_s", 0.02)
        tiny = [nightly(store, 18 + n, 124.0, "tiny") for n in range(3)]
        assert not new_slowdowns(store, tiny, "decode_tok_s", 0.02)

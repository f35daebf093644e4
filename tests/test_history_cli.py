"""The history command: table, latest verdicts, trend plot."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_history_store import ctx

from pytest_baremetal.history import HistoryError, SqliteStore, name_release, record_boot
from pytest_baremetal.history.cli import main
from pytest_baremetal.history.plot import baseline_band, trend_plot


def fill(path: Path) -> None:
    with SqliteStore(path) as store:
        for h in range(6):
            level = 25.0 if h < 5 else 22.0
            values = [{"repeat": r, "decode_tok_s": level + 0.1 * r, "prefill_tok_s": 300.0}
                      for r in range(1, 6)]  # fmt: skip
            run_id = record_boot(store, ctx(h, session=f"s{h}"), values, "passed")
            if h == 2:
                name_release(store, store.runs(ids=[run_id]), "v1.0")
        record_boot(store, ctx(9, board="other"), [{"repeat": 1, "decode_tok_s": 1.0}])


def test_history_prints_a_table_and_the_latest_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.sqlite"
    fill(path)
    assert main(["--board", "qemu-tcg", "--store", str(path), "--baseline", "median:4"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split()[:4] == ["id", "started", "(UTC)", "status"]
    assert "decode tok/s" in lines[1] and "v1.0" in out
    assert sum(line.startswith(("1 ", "6 ")) for line in lines) == 2
    assert "other" not in out  # another board
    assert "decode tok/s 22.3 vs 25.3 (-11.9%" in out and "regression" in out


def test_history_writes_a_trend_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, png = tmp_path / "h.sqlite", tmp_path / "out" / "trend.png"
    fill(path)
    assert main(["--board", "qemu-tcg", "--store", str(path), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    assert f"trend plot written to {png}" in capsys.readouterr().out


def test_history_of_an_unknown_board_and_a_bad_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "h.sqlite"
    fill(path)
    assert main(["--board", "nope", "--store", str(path)]) == 0
    assert "no runs of board nope" in capsys.readouterr().out
    assert main(["--board", "qemu-tcg", "--store", str(path), "--baseline", "best"]) == 2
    assert "baseline policy 'best'" in capsys.readouterr().err


def test_band_and_missing_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    band = baseline_band([24.0, 25.0, 26.0], 0.03)
    assert (band.low, band.median, band.high) == pytest.approx((24.25, 25.0, 25.75))
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(HistoryError, match=r"pip install \"pytest-baremetal\[plot\]\""):
        trend_plot([], {}, "decode_tok_s", tmp_path / "x.png")

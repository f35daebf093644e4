"""A board's ``perf:`` mapping: tracking on or off, decision parameters per board."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_baremetal.boards import load_board, with_overrides
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.perf_settings import BoardPerf, DecisionParams, describe

BOARDS = Path(__file__).resolve().parents[1] / "boards"
BASE = "kind: qemu\naccel: tcg\ncpu: max\n"


def board(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "b.yaml"
    path.write_text(BASE + text)
    return path


def test_boards_are_tracked_with_default_parameters_unless_they_say(tmp_path: Path) -> None:
    assert load_board(board(tmp_path, "")).perf == BoardPerf(True, DecisionParams())
    assert load_board(BOARDS / "qemu-tcg-icount.yaml").perf.track
    perf = load_board(board(tmp_path, "perf: {track: false, min_effect: 0.05, min_boots: 5}"))
    assert not perf.perf.track
    assert perf.perf.params == DecisionParams(min_effect=0.05, min_boots=5)
    assert describe(perf.perf).startswith("not tracked: min_effect=0.05")


def test_perf_can_be_set_for_one_run(tmp_path: Path) -> None:
    tracked = load_board(board(tmp_path, ""))
    untracked = with_overrides(tracked, ["perf.track=false", "perf.min_step=0.05"])
    assert not untracked.perf.track and untracked.perf.params.min_step == 0.05


@pytest.mark.parametrize(("text", "message"), [
    ("perf: true", "b.yaml: perf: expected a mapping like {track: true}, got bool"),
    ("perf: {track: 1}", "perf.track: expected true or false, got 1"),
    ("perf: {min_effect: 3}", "perf.min_effect: expected a fraction between 0 and 1 "
                              "(0.03 for 3%), got 3"),
    ("perf: {min_boots: 0}", "perf.min_boots: expected a whole number >= 1, got 0"),
    ("perf: {trak: false}", "perf.trak: unknown key 'trak'"),
])
def test_bad_perf_settings_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_board(board(tmp_path, text))
    assert message in str(info.value)
    if "trak" in text:
        assert "track" in str(info.value)  # the allowed keys are listed

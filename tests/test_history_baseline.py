"""Baseline policies, context matching, release naming, and end-to-end verdicts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from test_history_store import ctx

from pytest_baremetal.history import (
    HistoryError,
    SqliteStore,
    accept_as_baseline,
    evaluate,
    finish_run,
    name_release,
    parse_policy,
    record_boot,
    select_baseline,
)
from pytest_baremetal.history.baseline import BaselinePolicy


def perf(values: list[float]) -> list[dict[str, object]]:
    return [{"repeat": i + 1, "decode_tok_s": v, "prefill_tok_s": 10 * v}
            for i, v in enumerate(values)]  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "h.sqlite")


def boot(store: SqliteStore, hour: int, level: float, passed: bool = True, **kw: object) -> int:
    rng = np.random.default_rng(hour)
    values = (level * (1 + 0.01 * rng.standard_normal(5))).tolist()
    run_id = record_boot(store, ctx(hour, **kw), perf(values))
    finish_run(store, run_id, passed)
    return run_id


def test_parse_policy() -> None:
    assert parse_policy("last-pass") == BaselinePolicy("last-pass")
    assert parse_policy("median:9") == BaselinePolicy("median", count=9)
    assert str(parse_policy("release:v1.2")) == "release:v1.2"
    for bad in ("median:0", "median:x", "release:", "last", "last-pass:3"):
        with pytest.raises(HistoryError, match="last-pass, median:N"):
            parse_policy(bad)


def test_last_pass_takes_the_newest_passing_session(store: SqliteStore) -> None:
    old = [boot(store, h, 25.0, session="n1") for h in (0, 1, 2)]
    new = [boot(store, h, 25.0, session="n2") for h in (3, 4)]
    boot(store, 5, 25.0, passed=False, session="n3")
    choice = select_baseline(store, ctx().key, parse_policy("last-pass"))
    assert sorted(r.id for r in choice.runs) == new
    assert "last passing run" in choice.label
    current = store.runs(ids=new)
    again = select_baseline(store, ctx().key, parse_policy("last-pass"), exclude=current)
    assert sorted(r.id for r in again.runs) == old


def test_median_n_takes_the_last_n_passing_runs(store: SqliteStore) -> None:
    ids = [boot(store, h, 25.0, passed=h != 4) for h in range(6)]
    choice = select_baseline(store, ctx().key, parse_policy("median:3"))
    assert [r.id for r in choice.runs] == [ids[5], ids[3], ids[2]]


def test_accepting_a_run_hides_older_ones(store: SqliteStore) -> None:
    boot(store, 0, 30.0)
    boot(store, 1, 30.0)
    slower = boot(store, 2, 25.0, passed=False)
    accept_as_baseline(store, store.runs(ids=[slower]))
    choice = select_baseline(store, ctx().key, parse_policy("median:9"))
    assert [r.id for r in choice.runs] == [slower]


def test_release_baseline(store: SqliteStore) -> None:
    rel = boot(store, 0, 25.0)
    boot(store, 1, 20.0)
    name_release(store, store.runs(ids=[rel]), "v1.0")
    choice = select_baseline(store, ctx().key, parse_policy("release:v1.0"))
    assert [r.id for r in choice.runs] == [rel]
    missing = select_baseline(store, ctx().key, parse_policy("release:v9"))
    assert missing.status == "no_baseline" and "no run is named release v9" in missing.reason
    with pytest.raises(HistoryError):
        name_release(store, store.runs(ids=[rel]), "")


def test_other_contexts_are_never_compared_and_it_says_so(store: SqliteStore) -> None:
    boot(store, 0, 25.0, accelerator="kvm")
    tcg = boot(store, 1, 5.0, fallback_reason="kvm: failed to set MSR 0x10a")
    verdicts = evaluate(store, [tcg], "last-pass")
    assert [v.status for v in verdicts] == ["incomparable", "incomparable"]
    text = verdicts[1].describe()
    assert "accelerator tcg vs kvm" in text and "a fallback vs no fallback" in text
    assert "never compared" in text
    assert not any(v.failed for v in verdicts)


def test_first_run_has_no_baseline(store: SqliteStore) -> None:
    first = boot(store, 0, 25.0)
    [prefill, decode] = evaluate(store, [first], "last-pass")
    assert decode.status == prefill.status == "no_baseline"
    assert "no earlier passing run on board qemu-tcg" in decode.describe()


def test_evaluate_detects_an_injected_slowdown(store: SqliteStore) -> None:
    for h in range(9):
        boot(store, h, 25.0, session=f"night{h // 3}")
    same = [boot(store, h, 25.0, session="same") for h in (10, 11, 12)]
    ok = {v.metric: v for v in evaluate(store, same, "median:9")}
    slow = [boot(store, h, 25.0 / 1.05, session="slow") for h in (13, 14, 15)]
    assert ok["decode_tok_s"].status == "no_change"
    assert ok["decode_tok_s"].n_baseline == 45 and ok["decode_tok_s"].boots_current == 3
    bad = {v.metric: v for v in evaluate(store, slow, "median:9", metrics=["decode_tok_s"])}
    assert set(bad) == {"decode_tok_s"}
    assert bad["decode_tok_s"].status == "regression"
    assert -7.0 < (bad["decode_tok_s"].change_pct or 0.0) < -3.0
    assert re.fullmatch(
        r"decode tok/s 2\d\.\d vs 2\d\.\d \(-\d\.\d%, 95% CI -\d\.\d\.\.-\d\.\d%\): regression"
        r" \(detects changes of \d\.\d% or more at 80% power; noise CV \d\.\d%\)",
        bad["decode_tok_s"].describe(),
    )
    assert "median of the last 9 passing runs" in bad["decode_tok_s"].explain()

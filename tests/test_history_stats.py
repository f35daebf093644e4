"""The decision: rank test, bootstrap interval, minimum effect, verdict wording, power."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from pytest_baremetal.history.noise import NoiseModel, detection_rate, estimate_noise
from pytest_baremetal.history.stats import (
    DecisionParams,
    Verdict,
    compare,
    higher_is_better,
    mann_whitney,
    metric_label,
    rankdata,
)


def test_rankdata_averages_ties() -> None:
    assert rankdata(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


@pytest.mark.parametrize(("n1", "n2"), [(2, 3), (4, 4), (3, 5)])
def test_exact_mann_whitney_matches_enumeration(n1: int, n2: int) -> None:
    x, y = [1.0, 4.0, 6.0, 7.0][:n1], [2.0, 3.0, 5.0, 8.0, 9.0][:n2]
    observed = mann_whitney(x, y)
    pooled = x + y
    extreme = 0
    total = 0
    for pick in itertools.combinations(range(n1 + n2), n1):
        a = [pooled[i] for i in pick]
        b = [pooled[i] for i in range(n1 + n2) if i not in pick]
        u = sum((ai > bi) for ai in a for bi in b)
        extreme += abs(u - n1 * n2 / 2) >= abs(observed.u - n1 * n2 / 2)
        total += 1
    assert observed.exact
    assert observed.p_value == pytest.approx(extreme / total)


def test_normal_approximation_is_close_to_exact() -> None:
    for seed in (2, 4):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(0, 1, 12).tolist(), rng.normal(0.5, 1, 12).tolist()
        exact = mann_whitney(x, y, exact=True).p_value
        assert 0.1 < exact < 0.5
        assert mann_whitney(x, y, exact=False).p_value == pytest.approx(exact, rel=0.05)


def test_mann_whitney_handles_ties_and_identical_samples() -> None:
    assert mann_whitney([1.0, 1.0, 1.0], [1.0, 1.0]).p_value == 1.0
    tied = mann_whitney([1.0, 2.0, 2.0, 3.0, 3.0] * 3, [3.0, 4.0, 4.0, 5.0, 5.0] * 3)
    assert not tied.exact and tied.p_value < 0.001
    assert tied.u == 9.0  # no x above any y; 6 x 3 ties of value 3 count half each


def test_a_clear_regression_explains_itself() -> None:
    base = [[29.4, 29.3, 29.5, 29.6, 29.2]] * 3
    cur = [[28.1, 28.0, 28.2, 28.3, 27.9]] * 3
    v = compare("decode_tok_s", cur, base, baseline_label="last passing run")
    assert v.status == "regression" and v.failed
    assert v.change_pct == pytest.approx((28.1 / 29.4 - 1) * 100)
    assert v.ci_pct is not None and v.ci_pct[1] < 0
    low, high = v.ci_pct
    assert v.mde_pct is not None and 0 < v.mde_pct < 4.4
    assert v.describe() == (
        f"decode tok/s 28.1 vs 29.4 (-4.4%, 95% CI {low:.1f}..{high:.1f}%): regression "
        f"(detects changes of {v.mde_pct:.1f}% or more at 80% power; noise CV "
        f"{v.noise_cv_pct:.1f}%)"
    )
    assert "last passing run" in v.explain() and "Mann-Whitney" in v.explain()


def test_improvement_and_lower_is_better_metrics() -> None:
    base = [[10.0, 10.1, 9.9, 10.05, 9.95], [10.02, 9.97, 10.08, 9.93, 10.0],
            [9.98, 10.03, 10.06, 9.96, 10.01]]
    fast = [[11.0, 11.1, 10.9, 11.05, 10.95]]
    assert compare("decode_tok_s", fast, base).status == "improvement"
    assert compare("first_token_ms", fast, base).status == "regression"
    assert higher_is_better("download_mb_s") and not higher_is_better("first_token_ms")
    assert metric_label("prefill_tok_s") == "prefill tok/s"
    assert metric_label("download_mb_s") == "download MB/s"


def test_no_baseline_is_not_a_failure() -> None:
    v = compare("decode_tok_s", [[25.0, 25.1]], [])
    assert v.status == "no_baseline" and not v.failed
    assert v.describe().startswith("decode tok/s 25.1: no baseline")


def test_the_minimum_effect_ignores_real_but_tiny_changes() -> None:
    rng = np.random.default_rng(5)
    model = NoiseModel(within_cv=0.01, between_cv=0.0)
    base = model.simulate(rng, 25.0, 10, 20)
    cur = model.simulate(rng, 25.0, 10, 20, slowdown_pct=1.5)
    v = compare("decode_tok_s", cur, base)
    assert v.p_value is not None and v.p_value < 1e-6  # real...
    assert v.status == "no_change"  # ...but below 3%
    assert "minimum effect" in v.describe()
    strict = compare("decode_tok_s", cur, base, DecisionParams(min_effect=0.01))
    assert strict.status == "regression"


def test_verdicts_are_reproducible() -> None:
    cur, base = [[24.0, 24.5, 23.8]], [[25.0, 25.2, 24.9]]
    assert compare("decode_tok_s", cur, base) == compare("decode_tok_s", cur, base)


def test_no_false_alarm_in_97_percent_at_2_percent_cv() -> None:
    rate = detection_rate(
        NoiseModel(0.02, 0.0), 0.0, boots=1, repeats=5, baseline_boots=1, trials=300, seed=11
    )
    assert rate <= 0.03


def test_a_10_percent_slowdown_is_detected_at_5_repeats_per_side() -> None:
    rate = detection_rate(
        NoiseModel(0.02, 0.0), 10.0, boots=1, repeats=5, baseline_boots=3, trials=100, seed=12
    )
    assert rate >= 0.95


def test_a_baseline_of_fewer_than_three_boots_judges_nothing() -> None:
    base = [[10.0, 10.1, 9.9, 10.05, 9.95]]
    slow = [[8.0, 8.1, 7.9, 8.05, 7.95]]
    verdict = compare("decode_tok_s", slow, base)
    assert verdict.status == "no_baseline" and not verdict.failed
    assert "1 boot(s); 3 are needed" in verdict.describe()


def test_the_current_boot_inherits_the_baseline_boot_noise() -> None:
    # Three baseline boots that differ by ~10% from each other: one current boot 8% slower
    # than their median is within that noise and must not be called a regression.
    base = [[10.0, 10.02, 9.98], [11.0, 11.02, 10.98], [9.0, 9.02, 8.98]]
    cur = [[9.2, 9.21, 9.19]]
    assert compare("decode_tok_s", cur, base).status != "regression"


def test_boot_noise_is_not_mistaken_for_a_slowdown_with_three_boots() -> None:
    rate = detection_rate(
        NoiseModel(0.02, 0.01), 0.0, boots=3, repeats=5, baseline_boots=9, trials=200, seed=13
    )
    assert rate <= 0.02


def test_estimate_noise_recovers_the_model() -> None:
    rng = np.random.default_rng(7)
    groups = NoiseModel(0.03, 0.02).simulate(rng, 25.0, 400, 6)
    fitted = estimate_noise(groups)
    assert fitted.within_cv == pytest.approx(0.03, rel=0.1)
    assert fitted.between_cv == pytest.approx(0.02, rel=0.2)
    with pytest.raises(ValueError):
        estimate_noise([[1.0]])


def test_describe_of_incomparable() -> None:
    v = Verdict("decode_tok_s", "incomparable", current_median=25.0, reason="accelerator x")
    assert v.describe() == "decode tok/s 25.0: incomparable (accelerator x)"
    assert not math.isnan(v.min_effect_pct)


def test_noisy_board_says_inconclusive_with_its_power_never_no_change() -> None:
    # qemu-tcg on a shared host: boots differ by ~25%, a 50% slowdown in one current boot
    rng = np.random.default_rng(21)
    model = NoiseModel(within_cv=0.05, between_cv=0.25)
    seen = set()
    for _ in range(40):
        base = model.simulate(rng, 25.0, 3, 5)
        cur = model.simulate(rng, 25.0, 1, 5, slowdown_pct=50)
        v = compare("decode_tok_s", cur, base)
        seen.add(v.status)
        assert v.status in ("regression", "inconclusive"), v.describe()
        if v.status == "inconclusive":
            assert v.mde_pct is not None and v.mde_pct > v.min_effect_pct
            assert "this board's noise (CV " in v.describe()
            assert f"hides changes under {v.mde_pct:.1f}%" in v.describe()
    assert "inconclusive" in seen


def test_no_change_only_when_the_minimum_effect_was_detectable() -> None:
    rng = np.random.default_rng(22)
    quiet = NoiseModel(within_cv=0.002, between_cv=0.001)  # icount-like
    v = compare("decode_tok_s", quiet.simulate(rng, 25, 3, 5), quiet.simulate(rng, 25, 9, 5))
    assert v.status == "no_change", v.describe()
    assert v.mde_pct is not None and v.mde_pct <= v.min_effect_pct
    assert "detects changes of" in v.describe()


def test_too_few_samples_can_detect_nothing() -> None:
    v = compare("decode_tok_s", [[20.0]], [[25.0], [25.1], [24.9]],
                DecisionParams(min_boots=3))
    assert v.mde_pct == math.inf and v.status == "inconclusive"
    assert "hides any change" in v.describe()


def test_untracked_board_records_but_never_fails() -> None:
    base = [[29.4, 29.3, 29.5, 29.6, 29.2]] * 3
    cur = [[20.1, 20.0, 20.2, 20.3, 19.9]] * 3
    v = dataclasses.replace(compare("decode_tok_s", cur, base), tracked=False)
    assert v.status == "regression" and not v.failed
    assert "board not tracked" in v.describe()


def test_units_come_from_the_profile() -> None:
    assert metric_label("decode_tok_s", "tok/s") == "decode tok/s"
    assert metric_label("setup_ms", "ms") == "setup ms"
    assert metric_label("bogomips", "MIPS") == "bogomips MIPS"

"""The regression decision: is the current run's metric really worse than the baseline's?

Method (chosen for small, clustered, possibly skewed samples):

* effect: the ratio of medians, current / baseline, as a percent change. Medians ignore
  the odd slow repeat (a host hiccup under QEMU TCG) that would drag a mean.
* uncertainty: a seeded bootstrap percentile interval on that ratio. Samples come in
  groups (the repeats of one boot); the bootstrap resamples boots, then repeats within
  each chosen boot, so boot-to-boot noise widens the interval when there are several.
* significance: a two-sided Mann-Whitney U test (exact for small untied samples, else the
  normal approximation with tie correction). Percentile intervals on medians of five
  values are too narrow; requiring the rank test to agree keeps small samples honest.
* relevance: a minimum effect size. A real 1% change is not worth failing a nightly for.

A change is a regression (or an improvement) only when all three agree: the interval
excludes 0, p < 1 - confidence, and the change is at least the minimum effect.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pytest_baremetal.perf_settings import DecisionParams as DecisionParams

if TYPE_CHECKING:
    from .baseline import BaselineChoice

STATUSES = ("regression", "improvement", "no_change", "inconclusive", "no_baseline",
            "incomparable")
Groups = Sequence[Sequence[float]]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MannWhitney:
    u: float
    p_value: float
    exact: bool


def metric_label(metric: str, unit: str = "") -> str:
    """``decode_tok_s`` -> ``decode tok/s``; ``download_mb_s`` -> ``download MB/s``.

    With ``unit`` (from the profile), ``x_tok_s`` + ``tok/s`` -> ``x tok/s`` and
    ``setup_ms`` + ``ms`` -> ``setup ms``; other names get the unit appended."""
    if unit:
        stem = unit.lower().replace("/", "_")
        name = metric[: -len(stem) - 1] if metric.lower().endswith("_" + stem) else metric
        return f"{name.replace('_', ' ')} {unit}"
    for suffix, unit in (("_tok_s", "tok/s"), ("_mb_s", "MB/s"), ("_ms", "ms"), ("_ns", "ns")):
        if metric.endswith(suffix):
            return f"{metric[: -len(suffix)].replace('_', ' ')} {unit}"
    return metric.replace("_", " ")


def higher_is_better(metric: str) -> bool:
    """Rates (``*_tok_s``, ``*_mb_s``, ``*_per_s``) are better high; durations low."""
    if metric.endswith(("_tok_s", "_mb_s", "_per_s", "_hz")):
        return True
    return not metric.endswith(("_ms", "_ns", "_us", "_s", "_cycles"))


def rankdata(values: FloatArray) -> FloatArray:
    """Ranks from 1, ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_vals = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_vals[end] != sorted_vals[start]:
            ranks[order[start:end]] = (start + end + 1) / 2.0
            start = end
    return ranks


def _u_counts(n1: int, n2: int) -> list[int]:
    """How many orderings give each U = 0..n1*n2 (the Gaussian binomial coefficients)."""
    poly = [1]
    for i in range(1, n1 + 1):
        grown = poly + [0] * (n2 + i)
        for k in range(len(grown) - 1, n2 + i - 1, -1):
            grown[k] -= grown[k - n2 - i]
        for k in range(i, len(grown)):
            grown[k] += grown[k - i]
        poly = grown[: i * n2 + 1]
    return poly


def mann_whitney(x: Sequence[float], y: Sequence[float], exact: bool | None = None) -> MannWhitney:
    """Two-sided Mann-Whitney U test of x against y.

    ``exact=None`` uses the exact distribution for untied samples of at most 40 values in
    all, else the normal approximation with tie and continuity corrections.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("mann_whitney needs two non-empty samples")
    both = np.concatenate([a, b])
    ranks = rankdata(both)
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    _, tie_sizes = np.unique(both, return_counts=True)
    tied = bool((tie_sizes > 1).any())
    if exact is None:
        exact = not tied and n1 + n2 <= 40
    if exact:
        if tied:
            raise ValueError("the exact Mann-Whitney distribution assumes no ties")
        counts = _u_counts(n1, n2)
        tail = sum(counts[: round(min(u, n1 * n2 - u)) + 1])
        return MannWhitney(u, min(1.0, 2.0 * tail / math.comb(n1 + n2, n1)), True)
    n = n1 + n2
    tie_term = float((tie_sizes.astype(np.float64) ** 3 - tie_sizes).sum()) / (n * (n - 1))
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if var <= 0:
        return MannWhitney(u, 1.0, False)
    z = max(0.0, abs(u - n1 * n2 / 2.0) - 0.5) / math.sqrt(var)
    return MannWhitney(u, math.erfc(z / math.sqrt(2.0)), False)


def _padded(groups: Groups) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    kept = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    width = max(len(g) for g in kept)
    table = np.full((len(kept), width), np.nan)
    for i, g in enumerate(kept):
        table[i, : len(g)] = g
    return table, np.array([len(g) for g in kept], dtype=np.int64)


def bootstrap_medians(
    groups: Groups, n_boot: int, rng: np.random.Generator, boot_cv: float = 0.0
) -> FloatArray:
    """Medians of ``n_boot`` hierarchical resamples: boots with replacement, then repeats
    with replacement within each chosen boot, each boot's level jittered by ``boot_cv``."""
    table, sizes = _padded(groups)
    n_groups = len(sizes)
    pick = rng.integers(n_groups, size=(n_boot, n_groups))
    chosen_sizes = sizes[pick]
    width = table.shape[1]
    inner = np.floor(rng.random((n_boot, n_groups, width)) * chosen_sizes[..., None])
    values = table[pick[..., None], inner.astype(np.int64)]
    # a boot contributes as many draws as it has repeats; the padding columns are dropped
    valid = np.arange(width)[None, None, :] < chosen_sizes[..., None]
    values = np.where(valid, values, np.nan)
    if boot_cv > 0:
        sigma = math.sqrt(math.log1p(boot_cv * boot_cv))
        values = values * np.exp(rng.normal(0.0, sigma, (n_boot, n_groups, 1)))
    return np.nanmedian(values.reshape(n_boot, -1), axis=1)


def boot_cv(groups: Groups) -> float:
    """Coefficient of variation of the per-boot medians (0 with fewer than 2 boots)."""
    medians = [float(np.median(g)) for g in groups if len(g)]
    if len(medians) < 2 or np.mean(medians) <= 0:
        return 0.0
    return float(np.std(medians, ddof=1) / np.mean(medians))


def ratio_interval(
    current: Groups, baseline: Groups, params: DecisionParams
) -> tuple[float, float]:
    """Bootstrap percentile interval of median(current) / median(baseline)."""
    rng = np.random.default_rng(params.seed)

    prior = max(params.boot_cv_prior, boot_cv(baseline))

    def medians(groups: Groups) -> FloatArray:
        boots = sum(1 for g in groups if len(g))
        jitter = prior if boots < params.min_boots else 0.0
        return bootstrap_medians(groups, params.n_boot, rng, jitter)

    ratios = medians(current) / medians(baseline)
    tail = (1.0 - params.confidence) / 2.0 * 100.0
    low, high = np.percentile(ratios, [tail, 100.0 - tail])
    return float(low), float(high)


def _fmt(value: float) -> str:
    size = abs(value)
    return f"{value:.0f}" if size >= 1000 else f"{value:.1f}" if size >= 10 else f"{value:.3g}"


def _z(p: float) -> float:
    """The standard normal quantile of ``p`` (bisection on erfc; no scipy)."""
    low, high = -10.0, 10.0
    for _ in range(80):
        mid = (low + high) / 2.0
        if 0.5 * math.erfc(-mid / math.sqrt(2.0)) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def min_detectable_pct(
    ci_ratio: tuple[float, float], n_current: int, n_baseline: int, params: DecisionParams
) -> float:
    """The smallest change (percent) this comparison finds with probability ``params.power``.

    The standard error of the log ratio is read off the bootstrap interval (which carries
    both the repeat and the boot-to-boot noise); the change must clear the interval with
    the power's margin: ``(z_conf + z_power) * se``. Infinite when the rank test cannot
    reach significance at all with these sample sizes.
    """
    alpha = 1.0 - params.confidence
    if 2.0 / math.comb(n_current + n_baseline, n_current) >= alpha:
        return math.inf
    z_conf = _z(1.0 - alpha / 2.0)
    se = (math.log(ci_ratio[1]) - math.log(ci_ratio[0])) / (2.0 * z_conf)
    return math.expm1((z_conf + _z(params.power)) * se) * 100.0


def noise_cv(groups: Groups) -> float:
    """The total coefficient of variation of all samples (repeats and boots together)."""
    values = np.asarray([v for g in groups for v in g], dtype=np.float64)
    if len(values) < 2 or values.mean() <= 0:
        return 0.0
    return float(values.std(ddof=1) / values.mean())


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing one metric with its baseline, able to explain itself.

    ``mde_pct`` is the minimum detectable change (power figure); ``noise_cv_pct`` the
    baseline's noise. :func:`session.evaluate` fills ``baseline`` (the runs chosen) and the
    samples on both sides, so charts and reports reuse them instead of choosing again.
    """

    metric: str
    status: str
    current_median: float | None = None
    baseline_median: float | None = None
    change_pct: float | None = None
    ci_pct: tuple[float, float] | None = None
    p_value: float | None = None
    n_current: int = 0
    n_baseline: int = 0
    boots_current: int = 0
    boots_baseline: int = 0
    min_effect_pct: float = 0.0
    confidence: float = 0.95
    baseline_label: str = ""
    reason: str = ""
    mde_pct: float | None = None
    noise_cv_pct: float | None = None
    power: float = 0.80
    unit: str = ""
    tracked: bool = True
    baseline: BaselineChoice | None = field(default=None, compare=False, repr=False)
    current_samples: tuple[tuple[float, ...], ...] = field(default=(), repr=False)
    baseline_samples: tuple[tuple[float, ...], ...] = field(default=(), repr=False)
    run_ids: tuple[int, ...] = ()

    @property
    def failed(self) -> bool:
        return self.tracked and self.status == "regression"

    @property
    def baseline_values(self) -> list[float]:
        return [v for g in self.baseline_samples for v in g]

    def power_text(self) -> str:
        """``detects changes of 4.1% or more at 80% power; noise CV 1.2%``."""
        if self.mde_pct is None:
            return ""
        cv = f"; noise CV {self.noise_cv_pct:.1f}%" if self.noise_cv_pct is not None else ""
        if math.isinf(self.mde_pct):
            return f"too few samples to detect any change{cv}"
        return f"detects changes of {self.mde_pct:.1f}% or more at {self.power:.0%} power{cv}"

    def describe(self) -> str:
        """One line, e.g. ``decode tok/s 28.1 vs 29.4 (-4.4%, 95% CI -6.0..-2.9%): regression
        (detects changes of 1.2% or more ...)``."""
        label = metric_label(self.metric, self.unit)
        cur = "-" if self.current_median is None else _fmt(self.current_median)
        untracked = "" if self.tracked else " [board not tracked: recorded, never fails]"
        if self.status in ("no_baseline", "incomparable"):
            word = self.status.replace("_", " ")
            return (f"{label} {cur}: {word}" + (f" ({self.reason})" if self.reason else "")
                    + untracked)
        assert self.baseline_median is not None and self.change_pct is not None
        assert self.ci_pct is not None
        low, high = self.ci_pct
        head = (
            f"{label} {cur} vs {_fmt(self.baseline_median)} ({self.change_pct:+.1f}%, "
            f"{self.confidence * 100:.0f}% CI {low:.1f}..{high:.1f}%): "
            f"{self.status.replace('_', ' ')}"
        )
        details = [d for d in (self.reason, self.power_text()) if d]
        if self.status == "inconclusive":
            details = [self.reason]
        return head + (f" ({'; '.join(details)})" if details else "") + untracked

    def explain(self) -> str:
        """``describe()`` plus what was compared and how."""
        lines = [self.describe()]
        if self.baseline_label:
            lines.append(f"  baseline: {self.baseline_label}")
        if self.n_current:
            lines.append(
                f"  samples: {self.n_current} from {self.boots_current} boot(s) vs "
                f"{self.n_baseline} from {self.boots_baseline} boot(s)"
            )
        if self.p_value is not None:
            lines.append(
                f"  method: ratio of medians, hierarchical bootstrap CI, Mann-Whitney "
                f"p={self.p_value:.3g}, minimum effect {self.min_effect_pct:.1f}%"
            )
        if self.mde_pct is not None:
            lines.append(f"  power: {self.power_text()}")
        return "\n".join(lines)


def compare(
    metric: str,
    current: Groups,
    baseline: Groups,
    params: DecisionParams | None = None,
    baseline_label: str = "",
) -> Verdict:
    """Decide whether ``current`` (samples grouped by boot) regressed against ``baseline``.

    A change that is not significant reads "no change" only when the comparison could
    have seen a change of the minimum effect (its minimum detectable change is at most
    that); otherwise it reads "inconclusive" and says which changes the noise hides.
    """
    params = params or DecisionParams()
    cur = [float(v) for g in current for v in g]
    base = [float(v) for g in baseline for v in g]
    if not cur:
        raise ValueError(f"no current samples of {metric} to compare")
    verdict = Verdict(
        metric=metric,
        status="no_baseline",
        current_median=float(np.median(cur)),
        min_effect_pct=params.min_effect * 100.0,
        confidence=params.confidence,
        power=params.power,
        baseline_label=baseline_label,
        n_current=len(cur),
        n_baseline=len(base),
        boots_current=sum(1 for g in current if len(g)),
        boots_baseline=sum(1 for g in baseline if len(g)),
        current_samples=tuple(tuple(float(v) for v in g) for g in current if len(g)),
        baseline_samples=tuple(tuple(float(v) for v in g) for g in baseline if len(g)),
    )
    if not base:
        return verdict
    if verdict.boots_baseline < params.min_boots:
        return replace(verdict, baseline_median=float(np.median(base)),
                       reason=f"the baseline has {verdict.boots_baseline} boot(s); "
                              f"{params.min_boots} are needed to judge boot-to-boot noise")
    base_median = float(np.median(base))
    if base_median <= 0:
        return replace(verdict, status="incomparable", reason="the baseline median is 0")
    change = float(np.median(cur)) / base_median - 1.0
    low, high = ratio_interval(current, baseline, params)
    p = mann_whitney(cur, base).p_value
    mde = min_detectable_pct((low, high), len(cur), len(base), params)
    cv = noise_cv(baseline) * 100.0
    significant = (low > 1.0 or high < 1.0) and p < 1.0 - params.confidence
    if significant and abs(change) >= params.min_effect:
        worse = (change < 0) == higher_is_better(metric)
        status, reason = ("regression" if worse else "improvement"), ""
    elif significant:
        status, reason = "no_change", f"below the {params.min_effect * 100:.1f}% minimum effect"
    elif mde <= params.min_effect * 100.0:
        status, reason = "no_change", f"not significant, p={p:.2g}"
    else:
        hidden = "any change" if math.isinf(mde) else f"changes under {mde:.1f}%"
        status = "inconclusive"
        reason = (f"this board's noise (CV {cv:.1f}%) hides {hidden}; not significant, "
                  f"p={p:.2g}")
    return replace(
        verdict,
        status=status,
        baseline_median=base_median,
        change_pct=change * 100.0,
        ci_pct=((low - 1.0) * 100.0, (high - 1.0) * 100.0),
        p_value=p,
        reason=reason,
        mde_pct=mde,
        noise_cv_pct=cv,
    )

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
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

STATUSES = ("regression", "improvement", "no_change", "no_baseline", "incomparable")
Groups = Sequence[Sequence[float]]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DecisionParams:
    """How strict the decision is; defaults suit a 3-boot x 5-repeat nightly.

    A baseline needs ``min_boots`` boots: fewer cannot show the boot-to-boot noise, and
    TCG on a shared host swings by tens of percent between boots. A current side with fewer
    boots has each boot's level jittered by the baseline's boot-to-boot CV (at least
    ``boot_cv_prior``, a log-normal CV).
    """

    min_effect: float = 0.03
    confidence: float = 0.95
    boot_cv_prior: float = 0.01
    min_boots: int = 3
    n_boot: int = 2000
    seed: int = 20240611


@dataclass(frozen=True)
class MannWhitney:
    u: float
    p_value: float
    exact: bool


def metric_label(metric: str) -> str:
    """``decode_tok_s`` -> ``decode tok/s``; ``download_mb_s`` -> ``download MB/s``."""
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


@dataclass(frozen=True)
class Verdict:
    """The outcome of comparing one metric with its baseline, able to explain itself."""

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

    @property
    def failed(self) -> bool:
        return self.status == "regression"

    def describe(self) -> str:
        """One line, e.g. ``decode tok/s 28.1 vs 29.4 (-4.4%, 95% CI -6.0..-2.9%): regression``."""
        label = metric_label(self.metric)
        cur = "-" if self.current_median is None else _fmt(self.current_median)
        if self.status in ("no_baseline", "incomparable"):
            word = self.status.replace("_", " ")
            return f"{label} {cur}: {word}" + (f" ({self.reason})" if self.reason else "")
        assert self.baseline_median is not None and self.change_pct is not None
        assert self.ci_pct is not None
        low, high = self.ci_pct
        head = (
            f"{label} {cur} vs {_fmt(self.baseline_median)} ({self.change_pct:+.1f}%, "
            f"{self.confidence * 100:.0f}% CI {low:.1f}..{high:.1f}%): "
            f"{self.status.replace('_', ' ')}"
        )
        return head + (f" ({self.reason})" if self.reason else "")

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
        return "\n".join(lines)


def compare(
    metric: str,
    current: Groups,
    baseline: Groups,
    params: DecisionParams | None = None,
    baseline_label: str = "",
) -> Verdict:
    """Decide whether ``current`` (samples grouped by boot) regressed against ``baseline``."""
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
        baseline_label=baseline_label,
        n_current=len(cur),
        n_baseline=len(base),
        boots_current=sum(1 for g in current if len(g)),
        boots_baseline=sum(1 for g in baseline if len(g)),
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
    significant = (low > 1.0 or high < 1.0) and p < 1.0 - params.confidence
    if significant and abs(change) >= params.min_effect:
        worse = (change < 0) == higher_is_better(metric)
        status, reason = ("regression" if worse else "improvement"), ""
    elif not significant:
        status, reason = "no_change", f"not significant, p={p:.2g}"
    else:
        status, reason = "no_change", f"below the {params.min_effect * 100:.1f}% minimum effect"
    return replace(
        verdict,
        status=status,
        baseline_median=base_median,
        change_pct=change * 100.0,
        ci_pct=((low - 1.0) * 100.0, (high - 1.0) * 100.0),
        p_value=p,
        reason=reason,
    )

"""Change points in a metric's history: E-divisive means with a permutation test.

Each (board, context, metric) series is the per-run median in time order. E-divisive
(Matteson & James, 2014; the method behind MongoDB's and Apache Otava's regression
detection) splits a series where the energy distance between the two sides is largest,
keeps the split when a permutation test says such a distance is unlikely without a change,
and repeats on the pieces. It assumes no distribution and no fixed threshold: the noise of
the series itself decides what is a change, so a quiet board (``qemu-tcg-icount``) shows
small steps and a noisy one only large ones. Slow drifts show up as a change point inside
the drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .context import ComparisonKey
from .stats import higher_is_better, metric_label
from .store import HistoryStore, RunRecord

FloatArray = npt.NDArray[np.float64]

MIN_SIZE = 3
"""Fewest runs on each side of a change point."""
SIGNIFICANCE = 0.01
PERMUTATIONS = 399
SERIES_RUNS = 120
"""How many of the newest runs of a series are searched."""


def _q_statistics(values: FloatArray, min_size: int) -> FloatArray:
    """Q(tau) for each split tau = min_size .. n - min_size of each row of ``values``
    (shape batch x n), from 2-D prefix sums of the distance matrices."""
    n = values.shape[1]
    dist = np.abs(values[:, :, None] - values[:, None, :])
    prefix = np.zeros((values.shape[0], n + 1, n + 1))
    prefix[:, 1:, 1:] = dist.cumsum(axis=1).cumsum(axis=2)
    tau = np.arange(min_size, n - min_size + 1)
    total = prefix[:, n, n][:, None]
    left = prefix[:, tau, tau]
    cross = prefix[:, tau, n] - left
    right = total - left - 2.0 * cross
    t = tau.astype(np.float64)
    u = n - t
    energy = 2.0 * cross / (t * u) - left / (t * (t - 1.0)) - right / (u * (u - 1.0))
    result: FloatArray = t * u / n * energy
    return result


def _best_split(values: FloatArray, min_size: int) -> tuple[int, float]:
    q = _q_statistics(values[None, :], min_size)[0]
    best = int(np.argmax(q))
    return best + min_size, float(q[best])


def _p_value(values: FloatArray, min_size: int, permutations: int,
             rng: np.random.Generator) -> float:
    """Permutation p-value of the largest split statistic, each split's Q standardised by
    its own permutation mean and spread: raw Q favours balanced splits, so a step with only
    a few runs after it (the newest nights) would otherwise hardly ever be significant."""
    observed = _q_statistics(values[None, :], min_size)[0]
    shuffled = np.array([rng.permutation(values) for _ in range(permutations)])
    # in batches: each permutation needs an n x n distance matrix
    batch = max(1, 2_000_000 // (len(values) ** 2))
    null = np.concatenate([_q_statistics(shuffled[i:i + batch], min_size)
                           for i in range(0, permutations, batch)])
    mean, spread = null.mean(axis=0), null.std(axis=0)
    if not np.all(spread > 0):  # a constant series: nothing to split
        return 1.0
    best = float(((observed - mean) / spread).max())
    maxima = ((null - mean) / spread).max(axis=1)
    return float((np.sum(maxima >= best * (1.0 - 1e-9)) + 1) / (permutations + 1))


def e_divisive(
    values: Sequence[float],
    *,
    min_size: int = MIN_SIZE,
    significance: float = SIGNIFICANCE,
    permutations: int = PERMUTATIONS,
    seed: int = 20241126,
) -> list[tuple[int, float]]:
    """Change points of ``values`` as (index of the first value after it, p-value), in order."""
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    found: list[tuple[int, float]] = []
    segments = [(0, len(data))]
    while True:
        candidates = []
        for start, end in segments:
            if end - start >= 2 * min_size:
                tau, q = _best_split(data[start:end], min_size)
                candidates.append((q, start, end, start + tau))
        if not candidates:
            break
        q, start, end, split = max(candidates)
        if q <= 0:
            break
        p = _p_value(data[start:end], min_size, permutations, rng)
        if p > significance:
            break
        found.append((split, p))
        segments.remove((start, end))
        segments += [(start, split), (split, end)]
    return sorted(found)


@dataclass(frozen=True)
class ChangePoint:
    """A step in one series: the runs on each side, the medians and the step size."""

    metric: str
    key: ComparisonKey
    before: RunRecord
    after: RunRecord
    before_median: float
    after_median: float
    p_value: float
    unit: str = ""

    @property
    def step_pct(self) -> float:
        return (self.after_median / self.before_median - 1.0) * 100.0

    @property
    def slowdown(self) -> bool:
        return (self.step_pct < 0) == higher_is_better(self.metric)

    def describe(self) -> str:
        """``decode tok/s on qemu-tcg-icount: 118 -> 112 (-4.8%, slowdown, p=0.005) between
        run 7 (commit abc) and run 8 (commit def)``."""
        def side(run: RunRecord) -> str:
            commit = run.context.git_commit[:10] or "no commit"
            return f"run {run.id} ({commit}, {run.context.started_at:%Y-%m-%d %H:%M})"

        kind = "slowdown" if self.slowdown else "speed-up"
        return (f"{metric_label(self.metric, self.unit)} on {self.key.board}: "
                f"{self.before_median:.4g} -> {self.after_median:.4g} ({self.step_pct:+.1f}%, "
                f"{kind}, p={self.p_value:.3f}) between {side(self.before)} and "
                f"{side(self.after)}")


@dataclass(frozen=True)
class Series:
    """One (board, context, metric) series: runs in time order and each run's median."""

    key: ComparisonKey
    metric: str
    runs: tuple[RunRecord, ...]
    medians: tuple[float, ...]


def series_of(store: HistoryStore, metric: str, board: str | None = None,
              key: ComparisonKey | None = None, limit: int = SERIES_RUNS) -> list[Series]:
    """The series of ``metric`` per comparison key (one board, one key, or every board)."""
    runs = store.runs(board=board, key=key, limit=limit)
    samples = store.samples([r.id for r in runs], metric)
    grouped: dict[ComparisonKey, list[tuple[RunRecord, float]]] = {}
    for run in sorted(runs, key=lambda r: (r.context.started_at, r.id)):
        values = [s.value for s in samples.get(run.id, ())]
        if values:
            grouped.setdefault(run.key, []).append((run, float(np.median(values))))
    return [Series(k, metric, tuple(r for r, _ in items), tuple(m for _, m in items))
            for k, items in grouped.items()]


def changes_in(series: Series, unit: str = "", **options: int | float) -> list[ChangePoint]:
    """The change points of one series, each with the medians of the pieces around it."""
    points = e_divisive(series.medians, **options)  # type: ignore[arg-type]
    bounds = [0, *(i for i, _ in points), len(series.medians)]
    out = []
    for n, (index, p) in enumerate(points):
        before = series.medians[bounds[n]:index]
        after = series.medians[index:bounds[n + 2]]
        out.append(ChangePoint(series.metric, series.key, series.runs[index - 1],
                               series.runs[index], float(np.median(before)),
                               float(np.median(after)), p, unit))
    return out


def find_changes(store: HistoryStore, metrics: Sequence[str], board: str | None = None,
                 units: dict[str, str] | None = None) -> list[ChangePoint]:
    """Every change point of these metrics on ``board`` (or every board)."""
    found: list[ChangePoint] = []
    for metric in metrics:
        for series in series_of(store, metric, board):
            found += changes_in(series, (units or {}).get(metric, ""))
    return found


def new_slowdowns(store: HistoryStore, run_ids: Sequence[int], metric: str,
                  min_step: float, unit: str = "") -> list[ChangePoint]:
    """Slowdowns of at least ``min_step`` (a fraction) that appear in the series of these
    runs' context only once these runs are added: what a nightly fails on."""
    current = store.runs(ids=run_ids)
    if not current:
        return []
    ids = {r.id for r in current}
    out: list[ChangePoint] = []
    for series in series_of(store, metric, key=current[0].key):
        keep = [i for i, r in enumerate(series.runs) if r.id not in ids]
        older = Series(series.key, metric, tuple(series.runs[i] for i in keep),
                       tuple(series.medians[i] for i in keep))
        position = {r.id: i for i, r in enumerate(series.runs)}
        known = [position[c.after.id] for c in changes_in(older, unit)]
        for change in changes_in(series, unit):
            # a known step found again a run or two away (more data) is not new
            moved = any(abs(position[change.after.id] - k) < MIN_SIZE for k in known)
            if not moved and change.slowdown and abs(change.step_pct) >= min_step * 100.0:
                out.append(change)
    return out

"""A two-level noise model of tok/s (boot to boot, repeat to repeat) and power estimates.

Repeats of one boot share the boot's conditions (host load, placement, caches), so the
model draws a level per boot, then repeats around it, both log-normal with the given
coefficients of variation. :func:`estimate_noise` fits the model to measured groups, and
:func:`detection_rate` tells how often :func:`stats.compare` flags a given slowdown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .stats import DecisionParams, Groups, compare


@dataclass(frozen=True)
class NoiseModel:
    """Coefficients of variation between repeats of one boot and between boots."""

    within_cv: float = 0.02
    between_cv: float = 0.01

    def simulate(
        self,
        rng: np.random.Generator,
        mean: float,
        boots: int,
        repeats: int,
        slowdown_pct: float = 0.0,
    ) -> list[list[float]]:
        """Samples of ``boots`` boots x ``repeats`` repeats.

        ``slowdown_pct`` mimics the guest's ``slowdown_pct`` key: each token takes that
        much longer, so tok/s is divided by ``1 + slowdown_pct / 100``.
        """
        level = mean / (1.0 + slowdown_pct / 100.0)
        boot_levels = level * np.exp(rng.normal(0.0, _sigma(self.between_cv), boots))
        noise = np.exp(rng.normal(0.0, _sigma(self.within_cv), (boots, repeats)))
        return [[float(v) for v in row] for row in boot_levels[:, None] * noise]


def _sigma(cv: float) -> float:
    """The log-normal sigma whose coefficient of variation is ``cv``."""
    return math.sqrt(math.log1p(cv * cv))


def estimate_noise(groups: Groups) -> NoiseModel:
    """Fit the model to measured samples grouped by boot (one-way random effects on logs)."""
    logs = [np.log(np.asarray(g, dtype=np.float64)) for g in groups if len(g) >= 2]
    if not logs:
        raise ValueError("estimate_noise needs at least one boot with two repeats")
    within_var = float(np.mean([np.var(g, ddof=1) for g in logs]))
    between_var = 0.0
    if len(logs) >= 2:
        mean_size = float(np.mean([len(g) for g in logs]))
        boot_means = np.array([g.mean() for g in logs])
        between_var = max(0.0, float(np.var(boot_means, ddof=1)) - within_var / mean_size)
    return NoiseModel(
        within_cv=math.sqrt(math.expm1(within_var)),
        between_cv=math.sqrt(math.expm1(between_var)),
    )


def detection_rate(
    model: NoiseModel,
    slowdown_pct: float,
    *,
    boots: int,
    repeats: int,
    baseline_boots: int,
    trials: int,
    params: DecisionParams | None = None,
    seed: int = 1,
    mean: float = 25.0,
) -> float:
    """Share of ``trials`` simulated comparisons that :func:`compare` calls a regression."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for _ in range(trials):
        base = model.simulate(rng, mean, baseline_boots, repeats)
        cur = model.simulate(rng, mean, boots, repeats, slowdown_pct)
        flagged += compare("decode_tok_s", cur, base, params).status == "regression"
    return flagged / trials


SERIES_LENGTH = 30
"""Nights in a simulated series (a month of nightlies)."""


def simulate_series(
    rng: np.random.Generator,
    kind: str,
    noise_cv: float,
    length: int = SERIES_LENGTH,
    mean: float = 118.0,
    edge: int = 3,
) -> tuple[list[float], tuple[int, int] | None]:
    """One per-night tok/s series and where its change is (first and last index of the
    changed region), or None for ``kind="flat"``.

    ``kind``: ``flat``; ``step:P`` (a P% slowdown from a random night, at least ``edge``
    nights from either end); ``drift:P:N`` (P% slower each night for the last N nights).
    """
    values = mean * np.exp(rng.normal(0.0, _sigma(noise_cv), length))
    name, _, rest = kind.partition(":")
    if name == "flat":
        return [float(v) for v in values], None
    if name == "step":
        at = int(rng.integers(edge, length - edge + 1))
        values[at:] /= 1.0 + float(rest) / 100.0
        return [float(v) for v in values], (at, at)
    if name == "drift":
        pct, _, nights = rest.partition(":")
        n = int(nights)
        values[-n:] *= np.cumprod(np.full(n, 1.0 - float(pct) / 100.0))
        return [float(v) for v in values], (length - n, length - 1)
    raise ValueError(f"unknown series kind {kind!r}: flat, step:P or drift:P:N")


def changepoint_rate(kind: str, noise_cv: float, trials: int, seed: int = 1,
                     length: int = SERIES_LENGTH) -> float:
    """Share of ``trials`` simulated series in which E-divisive finds the change (a change
    point at most one night from the changed region); for ``flat``, the share with any
    change point at all (false change points)."""
    from .changepoints import e_divisive

    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        values, where = simulate_series(rng, kind, noise_cv, length)
        found = [i for i, _ in e_divisive(values)]
        if where is None:
            hits += bool(found)
        else:
            hits += any(where[0] - 1 <= i <= where[1] + 1 for i in found)
    return hits / trials

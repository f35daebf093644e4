"""The trend plot: every sample over time, each run's median, and the baseline band."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from .context import Sample
from .errors import HistoryError
from .stats import metric_label
from .store import RunRecord

STATUS_COLOURS = {"passed": "tab:blue", "failed": "tab:red", "running": "tab:gray"}


@dataclass(frozen=True)
class Band:
    """The no-regression zone around the baseline median."""

    median: float
    low: float
    high: float
    label: str


def baseline_band(values: Sequence[float], min_effect: float, label: str = "baseline") -> Band:
    """The baseline median with the ±``min_effect`` zone the decision tolerates."""
    median = float(np.median(values))
    return Band(
        median,
        median * (1.0 - min_effect),
        median * (1.0 + min_effect),
        f"{label} median ±{min_effect * 100:.0f}%",
    )


def _figure() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise HistoryError(
            'the trend plot needs matplotlib: pip install "pytest-baremetal[plot]"'
        ) from exc
    return Figure(figsize=(10, 5), layout="constrained")


def trend_plot(
    runs: Sequence[RunRecord],
    samples: Mapping[int, Sequence[Sample]],
    metric: str,
    out: Path,
    band: Band | None = None,
    title: str = "",
    changes: Sequence[tuple[datetime, str]] = (),
) -> Path:
    """Write a PNG of ``metric`` for ``runs`` (any order) to ``out`` and return its path.

    ``changes`` are change points (the first run after, a label) drawn as vertical lines."""
    fig = _figure()
    ax = fig.subplots()
    ordered = sorted(runs, key=lambda r: (r.context.started_at, r.id))
    medians: dict[str, tuple[list[Any], list[float]]] = {}
    seen_status: set[str] = set()
    for run in ordered:
        values = [s.value for s in samples.get(run.id, ()) if s.metric == metric]
        if not values:
            continue
        when = run.context.started_at
        colour = STATUS_COLOURS.get(run.status, "tab:gray")
        label = None if run.status in seen_status else f"samples ({run.status})"
        seen_status.add(run.status)
        ax.scatter([when] * len(values), values, s=12, alpha=0.5, color=colour, label=label)
        key = run.key
        context = f"{key.accelerator}{' (fallback)' if key.fallback else ''} {key.cpu_model}"
        xs, ys = medians.setdefault(context, ([], []))
        xs.append(when)
        ys.append(float(np.median(values)))
        if run.release_name:
            ax.annotate(
                run.release_name,
                (when, ys[-1]),
                textcoords="offset points",
                xytext=(0, 8),
                ha="center",
                fontsize=8,
            )
    if not medians:
        raise HistoryError(f"no {metric} samples to plot")
    for context, (xs, ys) in medians.items():
        ax.plot(xs, ys, marker="o", linewidth=1.5, label=f"run median, {context}")
    if band is not None:
        ax.axhspan(band.low, band.high, color="tab:green", alpha=0.15, label=band.label)
        ax.axhline(band.median, color="tab:green", linestyle="--", linewidth=1)
    for n, (when, text) in enumerate(changes):
        ax.axvline(when, color="tab:orange", linestyle=":", linewidth=1.5,
                   label="change point" if n == 0 else None)
        ax.annotate(text, (when, 1.0), xycoords=("data", "axes fraction"),
                    textcoords="offset points", xytext=(3, -12), fontsize=8,
                    color="tab:orange")
    times = [x for xs, _ in medians.values() for x in xs]
    if min(times) == max(times):  # one run: a year-wide default axis says nothing
        ax.set_xlim(min(times) - timedelta(hours=1), max(times) + timedelta(hours=1))
    ax.set_ylabel(metric_label(metric))
    ax.set_xlabel("run start (UTC)")
    ax.set_title(title or f"{metric_label(metric)} over time")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out

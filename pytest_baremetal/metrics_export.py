"""``--bm-metrics FILE``: every figure of the run as JSON lines, plus an OpenMetrics file.

``FILE`` gets one JSON object per figure: what the guest printed with a unit (every
``[perf]`` repeat, every benchmark), what tests recorded (``dut.record_metric``) and each
perf verdict, each with its board, context, commit, test and boot. ``FILE`` with the suffix
``.prom`` gets the Prometheus / node-exporter textfile format (OpenMetrics text): one gauge
per figure name, the median over the run per (board, context, commit), and the verdicts'
change, minimum detectable change and regression flag.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_baremetal.dut import Dut

if TYPE_CHECKING:
    from pytest_baremetal.history.stats import Verdict
    from pytest_baremetal.perf_tracking import PerfTracker

    LiveTracker = Callable[[], PerfTracker | None]

_KEY = pytest.StashKey["MetricsExport"]()


def add_option(parser: pytest.Parser) -> None:
    parser.getgroup("baremetal").addoption(
        "--bm-metrics", metavar="FILE", default=None,
        help="write every figure of the run as JSON lines to FILE and an OpenMetrics "
        "(Prometheus textfile) copy to FILE with suffix .prom.")


def enable(config: pytest.Config, duts_key: pytest.StashKey[list[Dut]],
           perf: LiveTracker | None = None) -> None:
    """Register the exporter when ``--bm-metrics`` is given. ``duts_key`` is where the plugin
    keeps each test's boots; ``perf`` a callable giving the live PerfTracker (or None)."""
    path = config.getoption("bm_metrics", None)
    if not path:
        return
    exporter = MetricsExport(Path(path), duts_key, perf, root=config.rootpath)
    config.stash[_KEY] = exporter
    config.pluginmanager.register(exporter, "baremetal-metrics")


def context_of(dut: Dut) -> str:
    """``tcg Skylake-Client`` (``tcg (fallback) ...`` when the accelerator fell back)."""
    fallback = " (fallback)" if dut.info.fallback_reason else ""
    return f"{dut.info.accelerator}{fallback} {dut.info.description.labels.get('cpu', '')}".rstrip()


@dataclass
class MetricsExport:
    path: Path
    duts_key: pytest.StashKey[list[Dut]]
    perf: LiveTracker | None = None
    root: Path | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    _boots: dict[int, str] = field(default_factory=dict)
    _metrics_seen: dict[int, int] = field(default_factory=dict)
    _duts: dict[int, tuple[Dut, dict[str, Any]]] = field(default_factory=dict)
    _verdicts_seen: set[int] = field(default_factory=set)
    _commit: str | None = None

    @property
    def commit(self) -> str:
        if self._commit is None:
            from pytest_baremetal.history.context import git_commit

            self._commit = git_commit(self.root)
        return self._commit

    def _labels(self, dut: Dut, test: str) -> dict[str, Any]:
        boot = self._boots.setdefault(id(dut), (dut.info.log_dir or dut.log_path.parent).name)
        return {"board": dut.board.name, "context": context_of(dut), "commit": self.commit,
                "test": test, "boot": boot}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        for dut in item.stash.get(self.duts_key, []):
            labels = self._labels(dut, item.nodeid)
            # the guest's own figures are read at the end, once the boot has finished
            self._duts.setdefault(id(dut), (dut, labels))
            seen = self._metrics_seen.get(id(dut), 0)
            for metric in dut.metrics[seen:]:
                self.rows.append({"name": metric.name, "value": metric.value,
                                  "unit": metric.unit, "source": "test", "time": now,
                                  **labels})
            self._metrics_seen[id(dut)] = len(dut.metrics)
        tracker = self.perf() if self.perf is not None else None
        for board, context, verdict in (tracker.verdicts if tracker is not None else []):
            if id(verdict) in self._verdicts_seen:
                continue
            self._verdicts_seen.add(id(verdict))
            self.rows.append(verdict_row(board, context, verdict, item.nodeid, self.commit, now))
        return report

    def guest_rows(self) -> list[dict[str, Any]]:
        """Every field with a unit the guests printed, per boot (labelled with its first test)."""
        rows = []
        for dut, labels in self._duts.values():
            for event in dut.console.events:
                for name, unit in event.units.items():
                    value = event.fields.get(name)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        rows.append({"name": name, "value": float(value), "unit": unit,
                                     "source": f"guest [{event.kind}]",
                                     "time_s": round(event.time, 3), **labels})
        return rows

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.rows[:0] = self.guest_rows()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", encoding="utf-8") as out:
            for row in self.rows:
                out.write(json.dumps(row, default=str) + "\n")
        self.path.with_suffix(".prom").write_text(openmetrics(self.rows), encoding="utf-8")


def verdict_row(board: str, context: str, verdict: Verdict, test: str, commit: str,
                now: str) -> dict[str, Any]:
    mde = verdict.mde_pct
    return {"name": f"{verdict.metric}_verdict", "value": verdict.change_pct, "unit": "%",
            "source": "verdict", "status": verdict.status, "failed": verdict.failed,
            "tracked": verdict.tracked,
            "mde_pct": None if mde is None or math.isinf(mde) else mde,
            "noise_cv_pct": verdict.noise_cv_pct, "baseline": verdict.baseline_label,
            "text": verdict.describe(), "board": board, "context": context, "commit": commit,
            "test": test, "boot": "", "time": now}


def metric_name(name: str) -> str:
    """A valid OpenMetrics name: ``bm_`` + the figure name, other characters as ``_``."""
    return "bm_" + re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels_text(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items()) + "}"


def openmetrics(rows: Iterable[dict[str, Any]]) -> str:
    """The figures as OpenMetrics gauges: the median per (name, board, context, commit)."""
    families: dict[str, dict[tuple[str, ...], list[float]]] = {}
    units: dict[str, str] = {}
    for row in rows:
        if row["source"] == "verdict":
            key = (row["board"], row["context"], row["commit"])
            base = metric_name(row["name"])
            if row["value"] is not None:
                families.setdefault(base + "_change_pct", {}).setdefault(key, []).append(
                    float(row["value"]))
            if row["mde_pct"] is not None:
                families.setdefault(base + "_min_detectable_pct", {}).setdefault(
                    key, []).append(float(row["mde_pct"]))
            families.setdefault(base + "_regression", {}).setdefault(key, []).append(
                1.0 if row["failed"] else 0.0)
            continue
        name = metric_name(row["name"])
        units.setdefault(name, row["unit"])
        families.setdefault(name, {}).setdefault(
            (row["board"], row["context"], row["commit"]), []).append(float(row["value"]))
    lines = []
    for name in sorted(families):
        lines.append(f"# TYPE {name} gauge")
        what = f"in {units[name]}, " if units.get(name) else ""
        lines.append(f"# HELP {name} pytest-baremetal figure ({what}median over the run)")
        for (board, context, commit), values in sorted(families[name].items()):
            labels = _labels_text({"board": board, "context": context, "commit": commit})
            lines.append(f"{name}{labels} {statistics.median(values):.6g}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"

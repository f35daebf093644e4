"""A session's performance bookkeeping: each boot's tok/s samples go to the history store
with their context, and tests get a verdict against the baseline."""

from __future__ import annotations

import hashlib
import statistics
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_baremetal.bus import Verdict
from pytest_baremetal.dut import Dut

if TYPE_CHECKING:  # numpy behind it: imported when a test asks for a verdict
    from pytest_baremetal import history

TREND_RUNS = 50
"""How many of the board's latest runs a trend chart shows."""


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def boot_context(dut: Dut, session: str) -> history.RunContext:
    """The facts that decide which earlier boots this one may be compared with."""
    from pytest_baremetal import history

    boot = dut.event("boot")
    cpu = dut.event("cpu") if dut.profile.provides("cpu") else None
    cfg = dut.event("cfg") if dut.profile.provides("cfg") else None
    cpu_model = dut.info.description.labels.get("cpu", dut.info.accelerator)
    if cpu is not None:
        cpu_model += f" ({cpu.fields.get('vendor')} {cpu.fields.get('family')}/" \
                     f"{cpu.fields.get('model')})"
    files: dict[str, Path] = dict(dut.build.files)
    model_name = str(cfg.fields.get("model")) if cfg is not None else ""
    model_digest = file_digest(files[model_name]) if model_name in files else model_name
    qemu_version = dut.info.description.facts.get("qemu", "")
    return history.collect_context(
        board=dut.board.name, accelerator=dut.info.accelerator, cpu_model=cpu_model,
        model_digest=model_digest, build_id=str(boot.fields.get("build", "")),
        qemu_version=qemu_version, fallback_reason=dut.info.fallback_reason, session=session,
    )


@dataclass
class PerfTracker:
    """Records each boot once, judges it, and closes the runs at the end of the session."""

    store_url: str | None
    policy: str | None
    update_baseline: bool = False
    release: str | None = None
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    #: Set by the plugin when the report can show a chart (Allure): after each verdict the
    #: board's trend PNG is drawn into the boot's log folder and handed to it with the metric.
    attach_trend: Callable[[Path, str], None] | None = None
    _store: history.HistoryStore | None = None
    _runs: dict[int, int] = field(default_factory=dict)  # id(dut) -> run id
    _failed: set[int] = field(default_factory=set)
    #: every verdict of the session, with board and context (for --bm-metrics)
    verdicts: list[tuple[str, str, history.Verdict]] = field(default_factory=list)

    @property
    def store(self) -> history.HistoryStore:
        from pytest_baremetal import history

        if self._store is None:
            self._store = history.open_store(self.store_url)
        return self._store

    def record(self, dut: Dut) -> int:
        """The history run of this boot, recorded on first use."""
        from pytest_baremetal import history

        key = id(dut)
        if key not in self._runs:
            perf = [e.fields for e in dut.events("perf")]
            context = boot_context(dut, self.session_id)
            self._runs[key] = history.record_boot(self.store, context, perf)
        return self._runs[key]

    def check(self, dut: Dut, metric: str = "decode_tok_s") -> history.Verdict:
        """This boot's verdict for `metric` against the baseline the policy selects, with
        the board's ``perf:`` settings; a new change point that is a slowdown of at least
        the board's ``min_step`` turns it into a regression (tracked boards only). The
        verdict is published on the boot's bus (reports subscribe to it)."""
        from pytest_baremetal import history

        run_id = self.record(dut)
        perf = dut.board.perf
        unit = next((e.units[metric] for e in dut.events("perf") if metric in e.units), "")
        verdicts = history.evaluate(self.store, [run_id], self.policy or history.DEFAULT_POLICY,
                                    metrics=(metric,), params=perf.params, tracked=perf.track,
                                    units={metric: unit})
        if not verdicts:
            raise history.HistoryError(f"boot recorded as run {run_id} has no {metric} samples")
        verdict = self._with_changes(verdicts[0], run_id, perf.params.min_step)
        if verdict.failed:
            self._failed.add(run_id)
        values = [float(str(e.fields[metric])) for e in dut.events("perf") if metric in e.fields]
        if values:
            dut.record_metric(metric, statistics.median(values), unit)
        from pytest_baremetal.metrics_export import context_of

        self.verdicts.append((dut.board.name, context_of(dut), verdict))
        dut.bus.publish(Verdict(dut.board.name, metric, verdict.status, verdict.explain(),
                                regression=verdict.failed))
        if self.attach_trend is not None:
            chart = self.trend_chart(dut, verdict)
            if chart is not None:
                self.attach_trend(chart, metric)
        return verdict

    def _with_changes(self, verdict: history.Verdict, run_id: int,
                      min_step: float) -> history.Verdict:
        from pytest_baremetal.history.changepoints import new_slowdowns

        session = [r.id for r in self.store.runs(ids=list(self._runs.values()))]
        found = new_slowdowns(self.store, [*session, run_id], verdict.metric, min_step,
                              verdict.unit)
        if not found or verdict.status == "regression":
            return verdict
        return replace(verdict, status="regression",
                       reason="new change point: " + "; ".join(c.describe() for c in found))

    def trend_chart(self, dut: Dut, verdict: history.Verdict) -> Path | None:
        """Draws the verdict's metric over the board's latest runs, with the verdict's own
        baseline band and the change points, as ``trend-<metric>.png`` in the boot's log
        folder; None (and a warning) if it cannot."""
        from pytest_baremetal import history
        from pytest_baremetal.history.changepoints import changes_in, series_of
        from pytest_baremetal.history.plot import baseline_band, trend_plot
        from pytest_baremetal.history.stats import metric_label

        metric = verdict.metric
        folder = dut.info.log_dir or dut.log_path.parent
        try:
            current = self.store.runs(ids=list(verdict.run_ids))
            runs = self.store.runs(board=dut.board.name, limit=TREND_RUNS)
            runs += [r for r in current if r.id not in {x.id for x in runs}]
            values = verdict.baseline_values
            policy = verdict.baseline.policy if verdict.baseline else self.policy
            band = (baseline_band(values, dut.board.perf.params.min_effect, str(policy))
                    if values else None)
            changes = [(c.after.context.started_at, f"{c.step_pct:+.1f}%")
                       for s in series_of(self.store, metric, key=current[0].key)
                       for c in changes_in(s, verdict.unit)]
            return trend_plot(runs, self.store.samples([r.id for r in runs], metric), metric,
                              folder / f"trend-{metric}.png", band,
                              f"{metric_label(metric, verdict.unit)} on {dut.board.name}",
                              changes)
        except history.HistoryError as error:
            warnings.warn(f"no trend chart of {metric} on {dut.board.name}: {error}",
                          stacklevel=2)
            return None

    def mark_failed(self, dut: Dut) -> None:
        if id(dut) in self._runs:
            self._failed.add(self._runs[id(dut)])

    def close(self) -> None:
        """Closes every run of this session; applies --bm-update-baseline and --bm-release."""
        from pytest_baremetal import history

        if self._store is None:
            return
        try:
            for run_id in self._runs.values():
                passed = run_id not in self._failed or self.update_baseline
                history.finish_run(self._store, run_id, passed)
            runs = self._store.runs(ids=list(self._runs.values()))
            if self.update_baseline and runs:
                history.accept_as_baseline(self._store, runs)
            if self.release and runs:
                history.name_release(self._store, runs, self.release)
        finally:
            self._store.close()
            self._store = None

"""A session's performance bookkeeping: each boot's tok/s samples go to the history store
with their context, and tests get a verdict against the baseline."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pytest_baremetal import history
from pytest_baremetal.dut import Dut


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def boot_context(dut: Dut, session: str) -> history.RunContext:
    """The facts that decide which earlier boots this one may be compared with."""
    boot = dut.event("boot")
    cpu = dut.event("cpu") if dut.profile.provides("cpu") else None
    cfg = dut.event("cfg") if dut.profile.provides("cfg") else None
    cpu_model = dut.board.cpu
    if cpu is not None:
        cpu_model += f" ({cpu.fields.get('vendor')} {cpu.fields.get('family')}/" \
                     f"{cpu.fields.get('model')})"
    files: dict[str, Path] = dict(getattr(dut.build, "files", {}) or {})
    model_name = str(cfg.fields.get("model")) if cfg is not None else ""
    model_digest = file_digest(files[model_name]) if model_name in files else model_name
    process = getattr(dut.power, "process", None)
    qmp = getattr(process, "qmp", None)
    qemu_version = str(getattr(qmp, "version", "")) if qmp is not None else ""
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
    _store: history.HistoryStore | None = None
    _runs: dict[int, int] = field(default_factory=dict)  # id(dut) -> run id
    _failed: set[int] = field(default_factory=set)

    @property
    def store(self) -> history.HistoryStore:
        if self._store is None:
            self._store = history.open_store(self.store_url)
        return self._store

    def record(self, dut: Dut) -> int:
        """The history run of this boot, recorded on first use."""
        key = id(dut)
        if key not in self._runs:
            perf = [e.fields for e in dut.events("perf")]
            context = boot_context(dut, self.session_id)
            self._runs[key] = history.record_boot(self.store, context, perf)
        return self._runs[key]

    def check(self, dut: Dut, metric: str = "decode_tok_s") -> history.Verdict:
        """This boot's verdict for `metric` against the baseline the policy selects."""
        run_id = self.record(dut)
        verdicts = history.evaluate(self.store, [run_id], self.policy or history.DEFAULT_POLICY,
                                    metrics=(metric,))
        if not verdicts:
            raise history.HistoryError(f"boot recorded as run {run_id} has no {metric} samples")
        verdict = verdicts[0]
        if verdict.failed:
            self._failed.add(run_id)
        values = [float(str(e.fields[metric])) for e in dut.events("perf") if metric in e.fields]
        if values:
            values.sort()
            dut.record_metric(metric, values[len(values) // 2], "tok/s")
        return verdict

    def mark_failed(self, dut: Dut) -> None:
        if id(dut) in self._runs:
            self._failed.add(self._runs[id(dut)])

    def close(self) -> None:
        """Closes every run of this session; applies --bm-update-baseline and --bm-release."""
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

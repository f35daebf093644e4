"""What the plugin calls: record a boot's samples, close it, and judge a set of boots."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from .baseline import BaselinePolicy, parse_policy, select_baseline
from .context import PERF_METRICS, RunContext, Sample, samples_from_perf
from .stats import DecisionParams, Verdict, compare
from .store import HistoryStore, RunRecord


def record_boot(
    store: HistoryStore,
    context: RunContext,
    perf_fields: Iterable[Mapping[str, object]],
    status: str = "running",
) -> int:
    """Store one boot's ``[perf] repeat=...`` event fields with its context; return the run id.

    Call it as soon as the boot's repeats are read: the run and its samples are committed
    at once, so a session interrupted later keeps them.
    """
    return store.record_run(context, samples_from_perf(perf_fields), status)


def finish_run(store: HistoryStore, run_id: int, passed: bool) -> None:
    """Record the outcome of the test(s) that used this boot."""
    store.set_status(run_id, "passed" if passed else "failed")


def evaluate(
    store: HistoryStore,
    run_ids: Sequence[int],
    policy: BaselinePolicy | str,
    metrics: Sequence[str] = PERF_METRICS,
    params: DecisionParams | None = None,
    *,
    tracked: bool = True,
    units: Mapping[str, str] | None = None,
) -> list[Verdict]:
    """One verdict per metric (and per context, when the runs span several) for these runs
    against the baseline that ``policy`` selects from the rest of the history.

    Each verdict carries its :class:`BaselineChoice` and the samples of both sides: the
    trend chart, the CLI and the report reuse them. ``tracked=False`` (a board's
    ``perf: {track: false}``) judges as usual but never fails; ``units`` come from the
    guest's profile."""
    chosen_policy = parse_policy(policy) if isinstance(policy, str) else policy
    current = store.runs(ids=run_ids)
    by_key: dict[object, list[RunRecord]] = {}
    for run in current:
        by_key.setdefault(run.key, []).append(run)
    verdicts: list[Verdict] = []
    for runs in by_key.values():
        choice = select_baseline(store, runs[0].key, chosen_policy, exclude=current)
        cur_samples = store.samples([r.id for r in runs])
        base_samples = store.samples([r.id for r in choice.runs])
        for metric in metrics:
            cur = _groups(cur_samples, metric)
            if not cur:
                continue
            base = _groups(base_samples, metric)
            verdict = replace(
                compare(metric, cur, base, params, choice.label),
                baseline=choice, tracked=tracked, unit=(units or {}).get(metric, ""),
                run_ids=tuple(r.id for r in runs),
            )
            if choice.status:
                verdict = _unjudged(verdict, choice.status, choice.reason)
            elif not base:
                verdict = _unjudged(
                    verdict, "no_baseline", f"the baseline runs have no {metric} samples"
                )
            verdicts.append(verdict)
    return verdicts


def _groups(samples: Mapping[int, Sequence[Sample]], metric: str) -> list[list[float]]:
    """The values of ``metric``, one list per run (runs without any are left out)."""
    out = []
    for run_samples in samples.values():
        values = [s.value for s in run_samples if s.metric == metric]
        if values:
            out.append(values)
    return out


def _unjudged(verdict: Verdict, status: str, reason: str) -> Verdict:
    return replace(verdict, status=status, reason=reason)

"""Choosing what a run is compared with, and marking runs as baselines.

Policies (``--bm-baseline``):

* ``last-pass``: the runs of the most recent passing session (or the single run when it
  has no session id);
* ``median:N``: the last N passing runs (boots); the decision compares medians;
* ``release:NAME``: the runs named as release NAME.

Only runs with the same :class:`ComparisonKey` (board, accelerator, whether it fell back,
CPU model, model digest) are ever candidates. Accepting runs as the new baseline
(``--bm-update-baseline``) hides every older run from ``last-pass`` and ``median:N``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .context import ComparisonKey
from .errors import HistoryError
from .store import HistoryStore, RunRecord

DEFAULT_POLICY = "median:9"


@dataclass(frozen=True)
class BaselinePolicy:
    """A parsed ``--bm-baseline`` value."""

    kind: str
    count: int = 0
    release: str = ""

    def __str__(self) -> str:
        if self.kind == "median":
            return f"median:{self.count}"
        if self.kind == "release":
            return f"release:{self.release}"
        return self.kind


def parse_policy(text: str) -> BaselinePolicy:
    """``last-pass``, ``median:N`` (N >= 1) or ``release:NAME``."""
    kind, _, arg = text.strip().partition(":")
    if kind == "last-pass" and not arg:
        return BaselinePolicy("last-pass")
    if kind == "median" and arg.isdigit() and int(arg) >= 1:
        return BaselinePolicy("median", count=int(arg))
    if kind == "release" and arg:
        return BaselinePolicy("release", release=arg)
    raise HistoryError(
        f"baseline policy {text!r} is not one of: last-pass, median:N (N >= 1), release:NAME"
    )


@dataclass(frozen=True)
class BaselineChoice:
    """The runs chosen as baseline, or why there are none (``status`` then says which)."""

    policy: BaselinePolicy
    runs: list[RunRecord] = field(default_factory=list)
    label: str = ""
    status: str = ""
    reason: str = ""


def _eligible(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """Passing or accepted runs, cut at the most recent accepted session (newest first)."""
    good = [r for r in runs if r.status == "passed" or r.accepted]
    accepted = [r for r in good if r.accepted]
    if not accepted:
        return good
    newest = accepted[0]
    same = [
        r
        for r in accepted
        if newest.context.session and r.context.session == newest.context.session
    ] or [newest]
    cutoff = min(r.context.started_at for r in same)
    return [r for r in good if r.context.started_at >= cutoff]


def _describe(runs: Sequence[RunRecord], what: str) -> str:
    first = min(r.context.started_at for r in runs).strftime("%Y-%m-%d %H:%M")
    ids = ",".join(str(r.id) for r in sorted(runs, key=lambda r: r.id))
    commits = sorted({r.context.git_commit[:10] for r in runs if r.context.git_commit})
    at = f" at {'/'.join(commits)}" if commits else ""
    return f"{what}: {len(runs)} run(s) from {first}{at} (ids {ids})"


def _missing(
    store: HistoryStore, key: ComparisonKey, policy: BaselinePolicy, excluded: set[int]
) -> BaselineChoice:
    """Explain an empty choice: nothing at all, or only runs of another context."""
    if policy.kind == "release":
        others = store.runs(release=policy.release)
        none_reason = f"no run is named release {policy.release}"
    else:
        others = store.runs(board=key.board, statuses=("passed",))
        none_reason = f"no earlier passing run on board {key.board} to compare with"
    others = [r for r in others if r.id not in excluded and r.key != key]
    if not others:
        return BaselineChoice(policy, status="no_baseline", reason=none_reason)
    diffs = key.differences(others[0].key)
    return BaselineChoice(
        policy,
        status="incomparable",
        reason=f"run {others[0].id} differs: {', '.join(diffs)}; "
        "runs of another context are never compared",
    )


def select_baseline(
    store: HistoryStore,
    key: ComparisonKey,
    policy: BaselinePolicy,
    exclude: Sequence[RunRecord] = (),
) -> BaselineChoice:
    """The baseline runs for runs of ``key`` under ``policy``, never any of ``exclude``
    nor runs of the same session as them."""
    excluded = {r.id for r in exclude}
    sessions = {r.context.session for r in exclude if r.context.session}

    def usable(r: RunRecord) -> bool:
        return r.id not in excluded and r.context.session not in sessions

    if policy.kind == "release":
        chosen = [r for r in store.runs(key=key, release=policy.release) if usable(r)]
        what = f"release {policy.release}"
    else:
        eligible = [r for r in _eligible(store.runs(key=key)) if usable(r)]
        if policy.kind == "median":
            chosen = eligible[: policy.count]
            what = f"median of the last {policy.count} passing runs"
        else:
            newest = eligible[:1]
            session = newest[0].context.session if newest else ""
            chosen = [r for r in eligible if session and r.context.session == session] or newest
            what = "last passing run"
    if not chosen:
        return _missing(store, key, policy, excluded)
    return BaselineChoice(policy, runs=chosen, label=_describe(chosen, what))


def accept_as_baseline(store: HistoryStore, runs: Sequence[RunRecord]) -> None:
    """``--bm-update-baseline``: these runs become the baseline; older ones are ignored."""
    store.set_accepted([r.id for r in runs])


def name_release(store: HistoryStore, runs: Sequence[RunRecord], name: str) -> None:
    """Name these runs as the baseline of release ``name`` (``release:NAME``)."""
    store.set_release([r.id for r in runs], name)

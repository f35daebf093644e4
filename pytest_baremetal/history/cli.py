"""``python -m pytest_baremetal history``: a board's runs as a table, and a trend plot.

Wire it with ``add_arguments(subparser)`` and ``run(args)``; ``main(argv)`` runs it alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .baseline import DEFAULT_POLICY, parse_policy
from .changepoints import find_changes
from .context import PERF_METRICS, Sample
from .errors import HistoryError
from .plot import baseline_band, trend_plot
from .session import evaluate
from .stats import DecisionParams, metric_label
from .store import HistoryStore, RunRecord, open_store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``history`` command's options."""
    parser.add_argument("--board", default=None,
                        help="board name, as in boards/ (every board with --changes)")
    parser.add_argument("--changes", action="store_true",
                        help="list the change points of each (board, context, metric) series")
    parser.add_argument(
        "--store",
        default=None,
        help="SQLite path or postgresql:// URL (default reports/history.sqlite)",
    )
    parser.add_argument("--plot", type=Path, default=None, help="write a trend PNG here")
    parser.add_argument("--metric", default="decode_tok_s", help="metric to plot")
    parser.add_argument(
        "--baseline",
        default=DEFAULT_POLICY,
        help="last-pass, median:N or release:NAME (default %(default)s)",
    )
    parser.add_argument("--limit", type=int, default=50, help="newest runs to show")


def _cell(values: Sequence[float]) -> str:
    return f"{float(np.median(values)):.2f} (n={len(values)})" if values else "-"


def history_table(
    runs: Sequence[RunRecord],
    samples: Mapping[int, Sequence[Sample]],
    metrics: Sequence[str] = PERF_METRICS,
) -> str:
    """A plain-text table of ``runs`` (as given), with each metric's median per run."""
    header = ["id", "started (UTC)", "status", "accel", "cpu", "build", "commit", "release"]
    header += [metric_label(m) for m in metrics]
    rows = [header]
    for r in runs:
        c = r.context
        accel = c.accelerator + ("*" if c.fallback_reason else "")
        status = r.status + ("+accepted" if r.accepted else "")
        row = [
            str(r.id),
            c.started_at.strftime("%Y-%m-%d %H:%M"),
            status,
            accel,
            c.cpu_model,
            c.build_id or "-",
            c.git_commit[:10] or "-",
            r.release_name or "-",
        ]
        run_samples = samples.get(r.id, ())
        row += [_cell([s.value for s in run_samples if s.metric == m]) for m in metrics]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if any(r.context.fallback_reason for r in runs):
        lines.append(
            "* the accelerator fell back (see fallback_reason); never compared with "
            "runs that did not"
        )
    return "\n".join(lines)


def report(store: HistoryStore, args: argparse.Namespace) -> str:
    """The table, the latest session's verdicts and (with ``--plot``) the plot's path."""
    policy = parse_policy(args.baseline)
    runs = store.runs(board=args.board, limit=args.limit)
    if not runs:
        return f"no runs of board {args.board} in {store.location}"
    samples = store.samples([r.id for r in runs])
    out = [
        f"history of board {args.board} in {store.location} (newest first)",
        history_table(runs, samples),
    ]
    newest = runs[0]
    session = [
        r
        for r in runs
        if r.id == newest.id
        or (newest.context.session and r.context.session == newest.context.session)
    ]
    out.append(f"\nlatest run(s) {', '.join(str(r.id) for r in session)} against {policy}:")
    verdicts = evaluate(store, [r.id for r in session], policy)
    out += ["  " + v.describe() for v in verdicts]
    if args.plot is not None:
        verdict = next((v for v in verdicts if v.metric == args.metric), None)
        values = verdict.baseline_values if verdict is not None else []
        band = baseline_band(values, DecisionParams().min_effect, str(policy)) if values else None
        changes = [(c.after.context.started_at, f"{c.step_pct:+.1f}%")
                   for c in find_changes(store, (args.metric,), args.board)
                   if c.key == newest.key]
        path = trend_plot(
            runs,
            samples,
            args.metric,
            args.plot,
            band,
            f"{metric_label(args.metric)} on {args.board}",
            changes,
        )
        out.append(f"\ntrend plot written to {path}")
    return "\n".join(out)


def changes_report(store: HistoryStore, board: str | None) -> str:
    """Every change point of the perf metrics, per series, oldest first."""
    found = find_changes(store, PERF_METRICS, board)
    where = f"board {board}" if board else "every board"
    if not found:
        return f"no change points in the history of {where} in {store.location}"
    lines = [f"change points of {where} in {store.location}:"]
    for change in sorted(found, key=lambda c: (c.key.board, c.metric,
                                               c.after.context.started_at)):
        lines.append("  " + change.describe())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the report; 0 on success, 2 on a store or option problem."""
    try:
        store = open_store(args.store)
        try:
            if args.changes:
                print(changes_report(store, args.board))
            elif args.board is None:
                raise HistoryError("--board is needed (or --changes for every board)")
            else:
                print(report(store, args))
        finally:
            store.close()
    except HistoryError as exc:
        print(f"history: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``history`` command on its own."""
    parser = argparse.ArgumentParser(prog="pytest_baremetal history", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())

"""Performance history: record tok/s samples with their context, compare with a baseline.

The plugin records each boot with :func:`record_boot`, closes it with :func:`finish_run`
and judges a session's boots with :func:`evaluate`; ``python -m pytest_baremetal history``
uses :mod:`.cli`.
"""

from __future__ import annotations

from .baseline import (
    DEFAULT_POLICY,
    BaselineChoice,
    BaselinePolicy,
    accept_as_baseline,
    name_release,
    parse_policy,
    select_baseline,
)
from .context import ComparisonKey, RunContext, Sample, collect_context, samples_from_perf
from .errors import HistoryError
from .session import evaluate, finish_run, record_boot
from .stats import DecisionParams, Verdict, compare
from .store import HistoryStore, PostgresStore, RunRecord, SqliteStore, open_store

__all__ = [
    "DEFAULT_POLICY",
    "BaselineChoice",
    "BaselinePolicy",
    "ComparisonKey",
    "DecisionParams",
    "HistoryError",
    "HistoryStore",
    "PostgresStore",
    "RunContext",
    "RunRecord",
    "Sample",
    "SqliteStore",
    "Verdict",
    "accept_as_baseline",
    "collect_context",
    "compare",
    "evaluate",
    "finish_run",
    "name_release",
    "open_store",
    "parse_policy",
    "record_boot",
    "samples_from_perf",
    "select_baseline",
]

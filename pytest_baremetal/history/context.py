"""What a performance sample was measured on: the run context and the samples themselves.

A *run* is one boot of the build. Its context says everything that may change tok/s:
board, accelerator actually used (and why it fell back, if it did), CPU model, build,
model, commit, QEMU version, host and date. Runs are only compared when their
:class:`ComparisonKey` is equal.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

PERF_METRICS = ("prefill_tok_s", "decode_tok_s")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ComparisonKey:
    """The facts two runs must share to be compared at all."""

    board: str
    accelerator: str
    fallback: bool
    cpu_model: str
    model_digest: str

    def differences(self, other: ComparisonKey) -> list[str]:
        """Human-readable differences, e.g. ``accelerator tcg vs kvm``; empty when equal."""
        out = []
        for name in ("board", "accelerator", "cpu_model", "model_digest"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{name} {mine or '-'} vs {theirs or '-'}")
        if self.fallback != other.fallback:
            word = {True: "a fallback", False: "no fallback"}
            out.append(f"{word[self.fallback]} vs {word[other.fallback]}")
        return out


@dataclass(frozen=True)
class RunContext:
    """Everything known about one boot that produced samples."""

    board: str
    accelerator: str
    cpu_model: str
    model_digest: str
    build_id: str = ""
    git_commit: str = ""
    qemu_version: str = ""
    host: str = ""
    fallback_reason: str | None = None
    session: str = ""
    started_at: datetime = field(default_factory=utc_now)

    @property
    def key(self) -> ComparisonKey:
        return ComparisonKey(
            board=self.board,
            accelerator=self.accelerator,
            fallback=self.fallback_reason is not None,
            cpu_model=self.cpu_model,
            model_digest=self.model_digest,
        )


@dataclass(frozen=True)
class Sample:
    """One measured value: ``metric`` (e.g. ``decode_tok_s``) of timed repeat ``repeat``."""

    metric: str
    value: float
    repeat: int


def samples_from_perf(
    perf_fields: Iterable[Mapping[str, object]], metrics: Iterable[str] = PERF_METRICS
) -> list[Sample]:
    """Samples from the fields of ``[perf] repeat=...`` events (summary lines are skipped)."""
    wanted = tuple(metrics)
    out: list[Sample] = []
    for fields in perf_fields:
        repeat = fields.get("repeat")
        if not isinstance(repeat, (int, str)) or isinstance(repeat, bool):
            continue
        for metric in wanted:
            value = fields.get(metric)
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                out.append(Sample(metric, float(value), int(repeat)))
    return out


def git_commit(cwd: Path | None = None) -> str:
    """The commit checked out in the git repository holding ``cwd`` ("" when none)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def host_name() -> str:
    """This machine's host name."""
    return socket.gethostname()


def collect_context(
    *,
    board: str,
    accelerator: str,
    cpu_model: str,
    model_digest: str,
    build_id: str = "",
    qemu_version: str = "",
    fallback_reason: str | None = None,
    session: str = "",
    cwd: Path | None = None,
) -> RunContext:
    """A :class:`RunContext` with the host facts (host name, git commit, date) filled in."""
    return RunContext(
        board=board,
        accelerator=accelerator,
        cpu_model=cpu_model,
        model_digest=model_digest,
        build_id=build_id,
        git_commit=git_commit(cwd),
        qemu_version=qemu_version,
        host=host_name(),
        fallback_reason=fallback_reason,
        session=session,
        started_at=utc_now(),
    )

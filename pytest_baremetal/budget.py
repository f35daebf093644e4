"""Where the run's time went: boots and their phases, and pytest's setup/call/teardown.

Printed at the end of a run with ``-v``. A boot's phases come from its console: time 0 is
the console log opening (QEMU spawned, paused, connected), then the first byte (firmware),
the guest's first marker line, the first generation, the last event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pytest

from pytest_baremetal.dut import Dut

PHASES = ("firmware", "guest init", "generation", "total")
_KEY = pytest.StashKey[dict[int, Dut]]()


def record(config: pytest.Config, dut: Dut) -> None:
    """Remembers a boot a test used (each boot once, however many tests share it)."""
    config.stash.setdefault(_KEY, {})[id(dut)] = dut


def recorded(config: pytest.Config) -> list[Dut]:
    return list(config.stash.get(_KEY, {}).values())


@dataclass(frozen=True)
class BootTimes:
    """Seconds of one boot's phases; None where the console did not show the boundary."""

    label: str
    firmware: float | None      # log open -> the guest's first marker line
    guest_init: float | None    # first marker line -> first generation begins
    generation: float | None    # first generation begins -> last event
    total: float | None         # log open -> last event


def boot_times(dut: Dut) -> BootTimes:
    events = dut.console.events
    label = f"{dut.board.name} [{dut.config.label()}]"
    if not events:
        return BootTimes(label, None, None, None, None)
    first, last = events[0].time, events[-1].time
    gen = next((e.time for e in events if e.kind == "gen_begin"), None)
    return BootTimes(label, first, (gen - first) if gen is not None else None,
                     (last - gen) if gen is not None else None, last)


def phase_seconds(reports: Iterable[object]) -> dict[str, float]:
    """Sum of pytest's setup/call/teardown durations over the test reports given."""
    sums = {"setup": 0.0, "call": 0.0, "teardown": 0.0}
    for report in reports:
        if isinstance(report, pytest.TestReport) and report.when in sums:
            sums[report.when] += report.duration
    return sums


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def lines(boots: Sequence[Dut], boot_count: int, phases: dict[str, float]) -> list[str]:
    """The budget as text lines: one per boot, a total row, then pytest's phases."""
    times = [boot_times(dut) for dut in boots]
    out = [f"{boot_count} boot(s), {len(times)} used by tests; seconds per boot phase "
           "(console time: firmware = log open -> first guest line):",
           f"  {'boot':<58} " + " ".join(f"{p:>10}" for p in PHASES)]
    for t in sorted(times, key=lambda t: -(t.total or 0.0)):
        cells = (t.firmware, t.guest_init, t.generation, t.total)
        out.append(f"  {t.label[:58]:<58} " + " ".join(f"{_fmt(c):>10}" for c in cells))
    sums = [sum(getattr(t, a) or 0.0 for t in times)
            for a in ("firmware", "guest_init", "generation", "total")]
    out.append(f"  {'all boots':<58} " + " ".join(f"{s:>10.1f}" for s in sums))
    out.append("pytest phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    return out

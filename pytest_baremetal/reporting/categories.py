"""Failure categories: which kind of trouble a failed test is, from its exception.

The classification is plain Python (no Allure import) so JUnit properties and console
summaries can use it too. Allure gets it twice: as a ``failure`` label on the test (what
Allure 3 matches on, see ``scripts/allurerc.mjs``) and as ``categories.json`` in the
results directory (Allure 2's format, matched on the exception text).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_baremetal import errors
from pytest_baremetal.dut import Dut
from pytest_baremetal.errors import BaremetalError, EarlierBootFailed, PerformanceRegression

LABEL = "failure"
"""The Allure label that carries a failed test's category name."""


@dataclass(frozen=True)
class Category:
    """One failure category: its id (for JUnit), its name (shown and matched in Allure)."""

    id: str
    name: str
    description: str
    statuses: tuple[str, ...]
    trace_regex: str

    def as_allure2(self) -> dict[str, object]:
        """This category as an entry of Allure 2's ``categories.json``."""
        return {
            "name": self.name,
            "description": self.description,
            "matchedStatuses": list(self.statuses),
            "traceRegex": self.trace_regex,
        }


_BOTH = ("failed", "broken")

CRASH = Category(
    "guest-crash", "Guest crash",
    "The guest died: a CPU exception dump, a panic or an [error] line, or the machine "
    "went away before printing what was awaited.",
    _BOTH, r"(?s).*(DeathStringSeen|ConsoleClosed|GuestCrash|GuestError).*")
HANG = Category(
    "guest-hang", "Guest hang",
    "The guest stopped printing (it went quiet), or never reached the awaited marker.",
    _BOTH, r"(?s).*(ExpectTimeout|GuestHang).*")
REGRESSION = Category(
    "performance-regression", "Performance regression",
    "A figure is significantly worse than its history's baseline.",
    ("failed",), r"(?s).*PerformanceRegression.*")
WRONG_OUTPUT = Category(
    "wrong-output", "Wrong output",
    "The guest ran to the end but printed something the test did not accept.",
    ("failed",), r"(?s).*AssertionError.*")
INFRASTRUCTURE = Category(
    "infrastructure", "Lab or infrastructure fault",
    "The lab, not the build: an accelerator that could not run the guest (fallback), "
    "QEMU that would not start, a relay or PDU, a serial adapter, a board or option error.",
    _BOTH, r"(?s).*(BootError|LabError|ConfigError|QmpError|PowerError|RelayError|PxeError|"
    r"FallbackError|SerialException|OSError).*")
BUILD = Category(
    "lab/build", "Build does not boot",
    "The firmware could not start the build under test (it said why: not found, load "
    "error, it dropped to its shell), or the guest never printed its banner.",
    _BOTH, r"(?s).*ImageError.*")

CATEGORIES: tuple[Category, ...] = (BUILD, INFRASTRUCTURE, CRASH, HANG, REGRESSION,
                                    WRONG_OUTPUT)
"""Most specific first: Allure 2 puts a test in the first category that matches."""

_BY_ID = {errors.LAB: INFRASTRUCTURE, errors.LAB_BUILD: BUILD, errors.GUEST_CRASH: CRASH,
          errors.GUEST_HANG: HANG, errors.REGRESSION: REGRESSION}


def classify(error: BaseException | None, fallback_reason: str | None = None,
             guest_finished: bool = False) -> Category | None:
    """The category of a failure, from its exception type; None for a bug in the test.

    ``fallback_reason`` is the boot's accelerator fallback (``BootInfo.fallback_reason``):
    a hang or a regression on a boot that fell back to TCG is the lab's fault, not the
    build's. ``guest_finished``: the guest printed its ``done`` line with status ok, so a
    console that closed afterwards is a guest that ended without what was awaited (wrong
    output), not a crash.
    """
    if error is None:
        return None
    if isinstance(error, EarlierBootFailed):
        error = error.first
    category = _by_type(error)
    if guest_finished and category is CRASH and not isinstance(error, errors.DeathStringSeen):
        return WRONG_OUTPUT
    if fallback_reason and category in (HANG, REGRESSION):
        return INFRASTRUCTURE
    return category


def _by_type(error: BaseException) -> Category | None:
    if isinstance(error, BaremetalError | PerformanceRegression):
        return _BY_ID.get(error.category) if error.category else None
    if isinstance(error, AssertionError):
        return WRONG_OUTPUT
    if isinstance(error, OSError):  # pyserial's SerialException is an OSError too
        return INFRASTRUCTURE
    return None  # a bug in the test itself: Allure's own "Test errors"


def of_test(error: BaseException | None, duts: Sequence[Dut]) -> Category | None:
    """The category of a test's failure, with what its boots tell (fallback, finished)."""
    reason = next((d.info.fallback_reason for d in duts if d.info.fallback_reason), None)
    return classify(error, reason, any(finished_ok(d) for d in duts))


def finished_ok(dut: Dut) -> bool:
    """The guest printed its ``done`` line with status ok."""
    if not dut.profile.provides("done"):
        return False
    done = dut.console.find_events("done")
    return bool(done) and done[0].fields.get("status") == "ok"


def by_name(name: str) -> Category | None:
    """The category with this name (the ``failure`` label's value), or None."""
    return next((c for c in CATEGORIES if c.name == name), None)


def write_categories(results_dir: Path) -> Path:
    """Writes ``categories.json`` (Allure 2 format) into the results directory."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "categories.json"
    path.write_text(json.dumps([c.as_allure2() for c in CATEGORIES], indent=2) + "\n")
    return path

"""Failure categories: which kind of trouble a failed test is, from its exception.

The classification is plain Python (no Allure import) so JUnit properties and console
summaries can use it too. Allure gets it twice: as a ``failure`` label on the test (what
Allure 3 matches on, see ``scripts/allurerc.mjs``) and as ``categories.json`` in the
results directory (Allure 2's format, matched on the exception text).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pytest_baremetal.errors import (
    BootError,
    ConfigError,
    ConsoleClosed,
    DeathStringSeen,
    ExpectTimeout,
)

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
    _BOTH, r"(?s).*(DeathStringSeen|ConsoleClosed).*")
HANG = Category(
    "guest-hang", "Guest hang",
    "The guest stopped printing (it went quiet), or never reached the awaited marker.",
    _BOTH, r"(?s).*ExpectTimeout.*")
REGRESSION = Category(
    "performance-regression", "Performance regression",
    "A figure is significantly worse than its history's baseline.",
    ("failed",), r"(?s).*\): regression\b.*")
WRONG_OUTPUT = Category(
    "wrong-output", "Wrong output",
    "The guest ran to the end but printed something the test did not accept.",
    ("failed",), r"(?s).*AssertionError.*")
INFRASTRUCTURE = Category(
    "infrastructure", "Lab or infrastructure fault",
    "The lab, not the build: an accelerator that could not run the guest (fallback), "
    "QEMU that would not start, a relay or PDU, a serial adapter, a board or option error.",
    _BOTH, r"(?s).*(BootError|ConfigError|QmpError|SerialException|OSError).*")

CATEGORIES: tuple[Category, ...] = (INFRASTRUCTURE, CRASH, HANG, REGRESSION, WRONG_OUTPUT)
"""Most specific first: Allure 2 puts a test in the first category that matches."""

_INFRA_WORDS = re.compile(
    r"\b(accelerator|kvm|whpx|hvf|fallback|fell back|relay|pdu|power switch|serial|tty|"
    r"usb|udev|labgrid|exporter|coordinator|cannot start qemu|qemu did not connect|"
    r"qemu exited|qmp|firmware file|ovmf)\b",
    re.IGNORECASE,
)
_HANG_WORDS = re.compile(r"\b(went quiet|hung|no console output|printed nothing)\b", re.I)
_REGRESSION = re.compile(r"\):\s*regression\b|\bperformance regression\b", re.IGNORECASE)
_INFRA_TYPES = ("QmpError", "SerialException", "SerialTimeoutException", "HistoryError",
                "ImageError")


def classify(error: BaseException | None, fallback_reason: str | None = None) -> Category | None:
    """The category of a failure, or None (no error, or an error of the test code itself).

    ``fallback_reason`` is the boot's accelerator fallback (``BootInfo.fallback_reason``):
    a hang or a regression on a boot that fell back to TCG is the lab's fault, not the build's.
    """
    if error is None:
        return None
    category = _by_exception(error)
    if fallback_reason and category in (HANG, REGRESSION):
        return INFRASTRUCTURE
    return category


def _by_exception(error: BaseException) -> Category | None:
    message = str(error)
    if isinstance(error, DeathStringSeen | ConsoleClosed):
        return CRASH
    if isinstance(error, ExpectTimeout):
        return HANG
    if isinstance(error, ConfigError):
        return INFRASTRUCTURE
    if isinstance(error, BootError):
        if _HANG_WORDS.search(message) and not _INFRA_WORDS.search(message):
            return HANG
        return INFRASTRUCTURE
    if type(error).__name__ in _INFRA_TYPES or isinstance(error, OSError):
        return INFRASTRUCTURE
    if isinstance(error, AssertionError):
        return REGRESSION if _REGRESSION.search(message) else WRONG_OUTPUT
    if _INFRA_WORDS.search(message):
        return INFRASTRUCTURE
    return None  # a bug in the test itself: Allure's own "Test errors"


def by_name(name: str) -> Category | None:
    """The category with this name (the ``failure`` label's value), or None."""
    return next((c for c in CATEGORIES if c.name == name), None)


def write_categories(results_dir: Path) -> Path:
    """Writes ``categories.json`` (Allure 2 format) into the results directory."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "categories.json"
    path.write_text(json.dumps([c.as_allure2() for c in CATEGORIES], indent=2) + "\n")
    return path

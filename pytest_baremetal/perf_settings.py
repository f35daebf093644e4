"""A board's performance settings (its ``perf:`` mapping) and the decision parameters.

Pure data, no numpy: board files are loaded on every run, perf checks only on some.

    perf:
      track: true          # false: figures are recorded, never pass or fail a test
      min_effect: 0.03     # smallest change worth failing for (fraction)
      confidence: 0.95
      min_boots: 3         # baseline boots needed to judge boot-to-boot noise
      boot_cv_prior: 0.01
      min_step: 0.02       # smallest change-point step that fails the nightly (fraction)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_baremetal.errors import ConfigError


@dataclass(frozen=True)
class DecisionParams:
    """How strict the decision is; defaults suit a 3-boot x 5-repeat nightly.

    A baseline needs ``min_boots`` boots: fewer cannot show the boot-to-boot noise, and
    TCG on a shared host swings by tens of percent between boots. A current side with fewer
    boots has each boot's level jittered by the baseline's boot-to-boot CV (at least
    ``boot_cv_prior``, a log-normal CV). ``power`` is the detection probability the minimum
    detectable change is stated at; ``min_step`` the smallest change-point step that fails.
    """

    min_effect: float = 0.03
    confidence: float = 0.95
    boot_cv_prior: float = 0.01
    min_boots: int = 3
    n_boot: int = 2000
    seed: int = 20240611
    power: float = 0.80
    min_step: float = 0.02


@dataclass(frozen=True)
class BoardPerf:
    """A board's ``perf:`` mapping: whether its figures judge tests, and how strictly."""

    track: bool = True
    params: DecisionParams = field(default_factory=DecisionParams)


_FRACTIONS = ("min_effect", "confidence", "boot_cv_prior", "power", "min_step")
_INTS = ("min_boots",)
KEYS = ("track", *_FRACTIONS, *_INTS)


def parse_board_perf(value: object, where: str) -> BoardPerf:
    """The board's ``perf`` value (None when absent); a ConfigError names the bad key."""
    if value is None:
        return BoardPerf()
    if not isinstance(value, Mapping):
        raise ConfigError(where, "perf", f"expected a mapping like {{track: true}}, "
                          f"got {type(value).__name__}")
    values: dict[str, Any] = {}
    track = True
    for key, item in value.items():
        name = f"perf.{key}"
        if key == "track":
            if not isinstance(item, bool):
                raise ConfigError(where, name, f"expected true or false, got {item!r}")
            track = item
        elif key in _FRACTIONS:
            if isinstance(item, bool) or not isinstance(item, int | float) or not 0 < item < 1:
                raise ConfigError(where, name, f"expected a fraction between 0 and 1 "
                                  f"(0.03 for 3%), got {item!r}")
            values[key] = float(item)
        elif key in _INTS:
            if isinstance(item, bool) or not isinstance(item, int) or item < 1:
                raise ConfigError(where, name, f"expected a whole number >= 1, got {item!r}")
            values[key] = item
        else:
            raise ConfigError(where, name, f"unknown key {key!r}", value=key, allowed=KEYS)
    return BoardPerf(track, DecisionParams(**values))


def describe(perf: BoardPerf) -> str:
    """``tracked, min_effect=0.03, ...`` for logs and reports."""
    values = ", ".join(f"{k}={v}" for k, v in asdict(perf.params).items()
                       if k not in ("n_boot", "seed"))
    return ("tracked" if perf.track else "not tracked") + f": {values}"

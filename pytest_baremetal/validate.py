"""One small validation kit for board files and their kind sections.

Every check raises :class:`ConfigError` naming the place (file or ``--bm-set``), the dotted
key, the bad value and what is allowed, with a "did you mean" hint for near misses.
Numbers are bounded, so a huge value is a usage error, never an ``OverflowError``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_baremetal.errors import ConfigError

#: The largest number of seconds any timeout or wait may be (a week).
MAX_SECONDS = 7 * 24 * 3600.0


@dataclass(frozen=True)
class Where:
    """Where values come from: the file (or option) named in errors, and the folder that
    relative paths are relative to."""

    place: str
    base: Path

    def error(self, key: str, problem: str, *, value: object = None,
              allowed: Sequence[str] = ()) -> ConfigError:
        return ConfigError(self.place, key, problem, value=value, allowed=allowed)


def type_name(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def suggest(value: object, allowed: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss, else ``''``."""
    close = difflib.get_close_matches(str(value), list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def known_keys(data: Mapping[Any, Any], allowed: Sequence[str], where: Where,
               prefix: str = "") -> None:
    """Every key of ``data`` is one of ``allowed``."""
    for key in data:
        if not isinstance(key, str) or key not in allowed:
            raise where.error(f"{prefix}{key}", f"unknown key {key!r}{suggest(key, allowed)}",
                              value=key, allowed=allowed)


def mapping(value: object, where: Where, key: str, expected: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        shown = "nothing" if value is None else f"{type(value).__name__} {shorten(value)}"
        raise where.error(key, f"expected {expected}, got {shown}")
    return value


def choice(value: object, allowed: Sequence[str], where: Where, key: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        hint = suggest(value, allowed) if isinstance(value, str) else ""
        raise where.error(key, f"invalid value {value!r}{hint}", value=value, allowed=allowed)
    return value


def string(value: object, where: Where, key: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise where.error(key, f"expected a string, got {type_name(value)} {value!r}")
    return value


def boolean(value: object, where: Where, key: str) -> bool:
    if not isinstance(value, bool):
        raise where.error(key, f"expected true or false, got {type_name(value)} {value!r}")
    return value


def integer(value: object, where: Where, key: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(key, f"expected an integer from {minimum} to {maximum}, "
                          f"got {type_name(value)} {value!r}")
    if value < minimum:
        raise where.error(key, f"{value} is too small: expected an integer >= {minimum}")
    if value > maximum:
        raise where.error(key, f"{shorten(value)} is too large: expected at most {maximum}")
    return value


def seconds(value: object, where: Where, key: str, *, allow_zero: bool = False,
            maximum: float = MAX_SECONDS) -> float:
    """A finite number of seconds, > 0 (or >= 0), at most ``maximum``."""
    low = ">=" if allow_zero else ">"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise where.error(key, f"expected seconds {low} 0, got {type_name(value)} {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise where.error(key, f"expected seconds {low} 0, got {value!r}")
    if value > maximum:
        raise where.error(key, f"{shorten(value)} s is too long: at most {maximum:g} s")
    if value < 0 or (value == 0 and not allow_zero):
        raise where.error(key, f"expected seconds {low} 0, got {value!r}")
    return float(value)


def strings(value: object, where: Where, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.error(key, f"expected a list of strings, got {shorten(value)}")
    return tuple(value)


def argv(value: object, where: Where, key: str) -> tuple[str, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) for v in value)):
        raise where.error(key, f"expected a command as a list of strings (no shell), "
                          f"got {shorten(value)}")
    return tuple(value)


def path(value: str, where: Where) -> Path:
    """``value`` as a path, relative ones taken from the board file's folder."""
    found = Path(value).expanduser()
    return found if found.is_absolute() else where.base / found


def shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"

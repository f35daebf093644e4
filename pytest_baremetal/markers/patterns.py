"""Profile regular expressions that cannot freeze the process.

A profile is data from a user, and a pattern with catastrophic backtracking (``^(a+)+$``
against a long line that almost matches) would otherwise hold the interpreter, and every
signal handler with it, for hours. Patterns are compiled with the ``regex`` module and
every search has a time bound; going over it raises :class:`PatternTimeout` naming the
profile file, the key and the pattern. Empty patterns and patterns that match an empty
line (``''``, ``.*``, ``x?``) are refused when the profile loads: they match every line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import regex

from pytest_baremetal.errors import ConfigError

#: Longest a single search may take. Marker lines are short: a sane pattern needs microseconds.
SEARCH_TIMEOUT_S = 0.25


class PatternTimeout(ConfigError):
    """A profile pattern took longer than :data:`SEARCH_TIMEOUT_S` on one line."""


@dataclass(frozen=True, eq=False)
class Pattern:
    """A compiled profile regex and where it came from (file and key, for errors)."""

    pattern: str
    source: str
    key: str
    compiled: regex.Pattern[str]
    #: text every match starts with, and whether the match is anchored at the line start:
    #: lines without it are rejected without running the (time-bounded, slower) engine
    prefix: str = field(default="", repr=False)
    anchored: bool = field(default=False, repr=False)

    @property
    def groupindex(self) -> dict[str, int]:
        return dict(self.compiled.groupindex)

    def search(self, text: str, pos: int = 0) -> regex.Match[str] | None:
        if self.prefix:
            if self.anchored:
                if pos or not text.startswith(self.prefix):
                    return None
            elif text.find(self.prefix, pos) < 0:
                return None
        try:
            return self.compiled.search(text, pos, timeout=SEARCH_TIMEOUT_S)
        except TimeoutError:
            raise PatternTimeout(
                self.source, self.key,
                f"pattern {self.pattern!r} took more than {SEARCH_TIMEOUT_S:g} s on a line of "
                f"{len(text)} characters (catastrophic backtracking: nested repeats such as "
                "(a+)+); rewrite it without a repeat inside a repeat", value=self.pattern,
            ) from None


def compile_pattern(value: object, source: str, key: str, *, may_match_empty: bool = False
                    ) -> Pattern:
    """Compile a profile pattern; ConfigError names the file and key when it is unusable."""
    if not isinstance(value, str):
        raise ConfigError(source, key, f"must be a regular expression string, not "
                          f"{type(value).__name__}", value=value)
    if not value:
        raise ConfigError(source, key, "an empty pattern matches every line; write what the "
                          "line starts with, e.g. '^\\[error\\] '", value=value)
    try:
        compiled = regex.compile(value, flags=regex.VERSION0)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise ConfigError(source, key, f"bad regular expression {value!r}: {exc}",
                          value=value) from exc
    anchored, prefix = literal_prefix(value)
    rx = Pattern(value, source, key, compiled, prefix, anchored)
    if not may_match_empty and rx.search("") is not None:
        raise ConfigError(source, key, f"pattern {value!r} matches an empty line, so it "
                          "matches every line; anchor it on text the line must contain",
                          value=value)
    return rx


def literal_prefix(pattern: str) -> tuple[bool, str]:
    """(anchored at the line start, the literal text every match begins with), as far as
    Python's own parser can tell; ``(False, "")`` when unsure (flags, other syntax)."""
    parser: Any = getattr(re, "_parser", None)
    constants: Any = getattr(re, "_constants", None)
    if parser is None or constants is None:
        return False, ""
    try:
        parsed = parser.parse(pattern)
    except Exception:  # regex-only syntax: no shortcut, the engine decides
        return False, ""
    if parsed.state.flags & (re.IGNORECASE | re.MULTILINE | re.VERBOSE):
        return False, ""
    items = list(parsed)
    anchored = bool(items) and items[0] == (constants.AT, constants.AT_BEGINNING)
    chars: list[str] = []
    for op, arg in items[1:] if anchored else items:
        if op is not constants.LITERAL:
            break
        chars.append(chr(arg))
    return anchored, "".join(chars)

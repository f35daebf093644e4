"""Typed events parsed from console lines, and generations rebuilt from the event stream."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_baremetal.markers.profile import Profile

GEN_BEGIN = "gen_begin"
GEN_END = "gen_end"
GEN_IDS = "gen_ids"
GEN_PROMPT_IDS = "gen_prompt_ids"
ABSENT = "-"  # a value of "-" means "not applicable": None for every type but str

_TRUE = frozenset({"1", "true", "yes", "on", "ok"})
_FALSE = frozenset({"0", "false", "no", "off"})
_KV = re.compile(r'(?<!\S)([A-Za-z0-9_][A-Za-z0-9_./-]*)=("(?:[^"\\]|\\.)*(?:"|$)|[^\s"]*)')
_ESCAPE = re.compile(r'\\(["\\])')


def _to_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _to_float(raw: str) -> float:
    """A finite float; ``inf`` and NaN mean "not measured" (a 1-second clock, a zero time)."""
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {raw!r}")
    return value


def _to_ints(raw: str) -> list[int]:
    return [int(part) for part in raw.split(",") if part.strip()]


CONVERTERS: Mapping[str, Callable[[str], object]] = {
    "int": lambda raw: int(raw, 10),
    "float": _to_float,
    "bool": _to_bool,
    "str": str,
    "hex": lambda raw: int(raw, 16),
    "ints": _to_ints,
}
TYPE_NAMES = tuple(CONVERTERS)


def convert(type_name: str, raw: str) -> object:
    """Convert a raw field value; ``-`` is None for non-str types. Raises ValueError."""
    if type_name != "str" and raw.strip() == ABSENT:
        return None
    return CONVERTERS[type_name](raw)


def unquote(value: str) -> str:
    """``"a \\"b\\""`` -> ``a "b"``; unquoted values are returned as they are."""
    if not value.startswith('"'):
        return value
    body = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
    return _ESCAPE.sub(r"\1", body)


def parse_kv(line: str) -> dict[str, str]:
    """Every ``key=value`` of a line; values may be double-quoted with ``\\"`` and ``\\\\``."""
    # keys are interned: thousands of events share one copy of each name
    return {sys.intern(m.group(1)): unquote(m.group(2)) for m in _KV.finditer(line)}


@dataclass(frozen=True, slots=True)
class Event:
    """One marker line, parsed: typed ``fields``, their ``raw_fields`` strings, and units.

    ``time`` is seconds since the console log opened (the time of the line's first byte).
    """

    kind: str
    fields: dict[str, object]
    line: str
    time: float = 0.0
    units: dict[str, str] = field(default_factory=dict)
    raw_fields: dict[str, str] = field(default_factory=dict)

    def matches(self, **filters: object) -> bool:
        """True when every filter equals the field (or, when callable, accepts it)."""
        for name, want in filters.items():
            if name not in self.fields:
                return False
            have = self.fields[name]
            if callable(want):
                if not want(have):
                    return False
            elif have != want:
                return False
        return True


class EventParser:
    """Feeds complete lines through a profile; captures generated text between begin and end.

    Lines between a ``gen_begin`` and a ``gen_end`` event that produce no event, and that the
    profile does not drop (``generation.drop``), are the generated text. A ``text`` group
    captured by the begin pattern (``'^AI: (?P<text>.*)'``) is its first line. The text is
    joined with ``\\n``, without trailing blank lines, and stored as ``fields["text"]`` of the
    ``gen_end`` event. Lines that do produce events (an ``[error]`` mid-generation) stay
    events.
    """

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self._text: list[str] | None = None

    def feed(self, line: str, time: float = 0.0, skip: frozenset[str] = frozenset(),
             ) -> list[Event]:
        """The events of one complete line; ``skip``: kinds already matched on it while it
        was incomplete (they are not reported twice, and the line is not text)."""
        events = self.profile.parse(line, time, skip)
        if self._text is not None and not events and not skip:
            if not self.profile.dropped_from_answer(line):
                self._text.append(line)
            return events
        for i, event in enumerate(events):
            if event.kind == GEN_BEGIN:
                first = event.fields.get("text")
                self._text = [first] if isinstance(first, str) and first else []
            elif event.kind == GEN_END:
                text = "\n".join(self._text or []).rstrip("\n")
                self._text = None
                events[i] = Event(
                    event.kind,
                    {**event.fields, "text": text},
                    event.line,
                    event.time,
                    event.units,
                    {**event.raw_fields, "text": text},
                )
        return events


@dataclass(frozen=True)
class Generation:
    """One generation: its text, the token count it reported, its ids and its prompt's ids."""

    text: str
    tokens: int | None
    ids: list[int]
    prompt_ids: list[int]
    begin: Event | None = None


def generations(events: Iterable[Event]) -> list[Generation]:
    """Every generation that reached its end event, in order, with the id lines after it.

    The ``gen_ids``/``gen_prompt_ids`` lines follow the end line: wait for them before
    building when the profile provides them.
    """
    done: list[Generation] = []
    begin: Event | None = None
    for event in events:
        if event.kind == GEN_BEGIN:
            begin = event
        elif event.kind == GEN_END:
            tokens = event.fields.get("tokens")
            done.append(
                Generation(
                    text=str(event.fields.get("text", "")),
                    tokens=tokens if isinstance(tokens, int) else None,
                    ids=[],
                    prompt_ids=[],
                    begin=begin,
                )
            )
            begin = None
        elif event.kind in (GEN_IDS, GEN_PROMPT_IDS) and done:
            values = event.fields.get("ids" if event.kind == GEN_IDS else "prompt_ids")
            if isinstance(values, list):
                ids = [int(v) for v in values]
                if event.kind == GEN_IDS:
                    done[-1] = replace(done[-1], ids=ids)
                else:
                    done[-1] = replace(done[-1], prompt_ids=ids)
    return done

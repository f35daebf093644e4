"""YAML for files users write (boards, profiles) and for option values: safe against hostile input.

PyYAML's ``safe_load`` still expands aliases (a few hundred bytes of nested ``*a`` make
gigabytes: the "billion laughs"), follows self-referencing aliases into a RecursionError,
and reads ``.nan``/``.inf`` as floats. Every entry here refuses those with a
:class:`ConfigError` naming the source, and reads bytes as UTF-8 with the offset of the
first bad byte. Nothing in a board file or profile needs anchors, so they are refused
rather than bounded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from pytest_baremetal.errors import ConfigError

#: Board files and profiles are a few kilobytes; a megabyte is a mistake (a wrong path).
MAX_FILE_BYTES = 1 << 20
#: Deeper nesting than this is not a board or a profile (and PyYAML recurses on it).
MAX_DEPTH = 32


class _NoAliasLoader(yaml.SafeLoader):
    """A SafeLoader that stops at the first anchor or alias."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _AliasRefused(event.start_mark)
        event = self.peek_event()  # type: ignore[no-untyped-call]
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise _AliasRefused(event.start_mark)
        return super().compose_node(parent, index)


class _AliasRefused(Exception):
    def __init__(self, mark: Any) -> None:
        super().__init__("YAML anchors and aliases (&name, *name) are not allowed")
        self.mark = mark


def decode(data: bytes, source: str) -> str:
    """UTF-8 text of a user file, or a ConfigError naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(source, "", f"not UTF-8 text: byte 0x{data[error.start]:02x} at "
                          f"offset {error.start} cannot be decoded; save the file as UTF-8"
                          ) from error


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a user file of bounded size (``what`` names it in errors)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(path, "", f"cannot read {what}: {error.strerror or error}") from error
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(path, "", f"{what} is larger than {MAX_FILE_BYTES // 1024} KiB; "
                          "is this the right file?")
    return decode(data, str(path))


def loads(text: str, source: str) -> Any:
    """Parse one YAML document; errors name ``source`` with line and column."""
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)
    except _AliasRefused as error:
        raise ConfigError(source, "", f"{_where(error.mark)}{error}; write the values out "
                          "in full") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(source, "", f"YAML syntax error at {_where(mark)}{problem}") from None
    except RecursionError:
        raise ConfigError(source, "", f"nested deeper than {MAX_DEPTH} levels") from None
    except (ValueError, OverflowError) as error:  # e.g. an integer of 5000 digits, 2001-13-45
        raise ConfigError(source, "", f"a value cannot be read: {str(error)[:200]}") from None
    _check_tree(data, source, "", 0)
    return data


def load_file(path: Path, what: str) -> Any:
    """Read and parse a user's YAML file (board file, profile)."""
    return loads(read_text(path, what), str(path))


def _where(mark: Any) -> str:
    if mark is None:
        return ""
    return f"line {mark.line + 1}, column {mark.column + 1}: "


def _check_tree(value: object, source: str, key: str, depth: int) -> None:
    """No NaN or infinity anywhere, and bounded depth."""
    if depth > MAX_DEPTH:
        raise ConfigError(source, key, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(source, key, f"{value!r} is not a finite number", value=value)
    if isinstance(value, dict):
        for child_key, child in value.items():
            _check_tree(child, source, f"{key}.{child_key}" if key else str(child_key),
                        depth + 1)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            _check_tree(child, source, f"{key}[{index}]", depth + 1)

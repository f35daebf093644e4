"""The HTTP ``Range`` header: one byte range, or why it cannot be served."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` .. ``end`` inclusive of a file of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


class RangeNotSatisfiable(ValueError):
    """A Range header this server answers with 416 (malformed, several ranges, or out of
    the file)."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """None when there is no header (the whole file); raises RangeNotSatisfiable."""
    if header is None:
        return None
    match = _SINGLE.match(header)
    if match is None:
        raise RangeNotSatisfiable(f"unsupported Range {header!r}: one 'bytes=a-b' range only")
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        raise RangeNotSatisfiable(f"empty Range {header!r}")
    if first == "":  # suffix: the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise RangeNotSatisfiable(f"Range {header!r} selects no bytes of {size}")
        return ByteRange(max(0, size - count), size - 1, size)
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        raise RangeNotSatisfiable(f"Range {header!r} ends before it starts")
    if start >= size:
        raise RangeNotSatisfiable(f"Range {header!r} starts beyond the file ({size} bytes)")
    return ByteRange(start, end, size)

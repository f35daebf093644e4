"""The console log: raw bytes with host timestamps, and the cleaned text view beside it.

Raw format (``<name>.console.log``): one record per received line,
``"%012.6f " % seconds_since_open`` then the line's raw bytes up to and including its
``\\n``. A line split across chunks keeps the time of its first byte; the last record may
lack its ``\\n``. Records are written as bytes arrive, so the file can be followed live.
The cleaned view (``<name>.console.txt``) is exactly what :class:`Cleaner` produced.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from pytest_baremetal.console.clean import Cleaner

_STAMP = re.compile(rb"(\d+\.\d{6}) ")


def text_path_for(raw_path: Path) -> Path:
    """``x.console.log`` -> ``x.console.txt``."""
    return raw_path.with_suffix(".txt")


class ConsoleLog:
    """Appends received chunks to the raw log and the cleaned view; returns the clean text."""

    def __init__(
        self, raw_path: str | Path, text_path: str | Path | None = None, t0: float | None = None
    ) -> None:
        self.raw_path = Path(raw_path)
        self.text_path = Path(text_path) if text_path is not None else text_path_for(self.raw_path)
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic() if t0 is None else t0
        self._cleaner = Cleaner()
        self._at_line_start = True
        self._raw = self.raw_path.open("wb")
        self._text = self.text_path.open("w", encoding="utf-8", newline="")

    def append(self, chunk: bytes, t: float) -> str:
        """Record ``chunk`` received at monotonic time ``t``; return its cleaned text."""
        stamp = b"%012.6f " % max(0.0, t - self.t0)
        pos = 0
        while pos < len(chunk):
            if self._at_line_start:
                self._raw.write(stamp)
            nl = chunk.find(b"\n", pos)
            end = len(chunk) if nl < 0 else nl + 1
            self._raw.write(chunk[pos:end])
            self._at_line_start = nl >= 0
            pos = end
        text = self._cleaner.feed(chunk)
        self._text.write(text)
        self._raw.flush()
        self._text.flush()
        return text

    def finish(self) -> str:
        """End of stream: flush the cleaner (dangling UTF-8) into the text view."""
        text = self._cleaner.flush()
        if not self._text.closed:
            self._text.write(text)
            self._text.flush()
        return text

    def close(self) -> None:
        self._raw.close()
        self._text.close()

    def __enter__(self) -> ConsoleLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_records(path: str | Path) -> Iterator[tuple[float, bytes]]:
    """Yield ``(seconds_since_open, raw_line)`` for every record of a raw log."""
    data = Path(path).read_bytes()
    pos = 0
    while pos < len(data):
        stamp = _STAMP.match(data, pos)
        if stamp is None:
            raise ValueError(f"{path}: offset {pos}: no timestamp at the start of a record")
        start = stamp.end()
        nl = data.find(b"\n", start)
        end = len(data) if nl < 0 else nl + 1
        yield float(stamp.group(1)), data[start:end]
        pos = end


def read_raw(path: str | Path) -> bytes:
    """The exact byte stream the console received."""
    return b"".join(line for _, line in read_records(path))

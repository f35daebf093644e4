"""Faults the file server injects, per path or for every request, per test."""

from __future__ import annotations

from dataclasses import dataclass

STATUS_CODES = (404, 500)


@dataclass(frozen=True)
class Fault:
    """Base of every fault: ``path`` is the request path without its leading slash (None:
    every path); ``times`` limits the fault to the first N matching requests (None: all)."""

    path: str | None = None
    times: int | None = None

    def matches(self, path: str) -> bool:
        return self.path is None or self.path.lstrip("/") == path

    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Status(Fault):
    """Answers with this status code (404 or 500) instead of the file."""

    code: int = 404

    def __post_init__(self) -> None:
        if self.code not in STATUS_CODES:
            raise ValueError(f"status fault: code must be one of {STATUS_CODES}, not {self.code}")

    def describe(self) -> str:
        return f"status({self.code})"


@dataclass(frozen=True)
class CloseAt(Fault):
    """Closes the connection after this fraction (0..1) of the response body."""

    fraction: float = 0.5

    def __post_init__(self) -> None:
        _check_fraction("close_at", self.fraction)

    def describe(self) -> str:
        return f"close_at({self.fraction:g})"


@dataclass(frozen=True)
class Stall(Fault):
    """Sends nothing for ``seconds`` after the headers and ``at_fraction`` of the body."""

    seconds: float = 10.0
    at_fraction: float = 0.0

    def __post_init__(self) -> None:
        _check_fraction("stall", self.at_fraction)
        if self.seconds < 0:
            raise ValueError(f"stall: seconds must be >= 0, not {self.seconds}")

    def describe(self) -> str:
        return f"stall({self.seconds:g}s@{self.at_fraction:g})"


@dataclass(frozen=True)
class LieLength(Fault):
    """Announces ``delta`` more (or fewer) bytes in Content-Length than it sends; the
    connection is closed after the body so the lie cannot spill into another response."""

    delta: int = 1

    def describe(self) -> str:
        return f"lie_length({self.delta:+d})"


@dataclass(frozen=True)
class FlipByte(Fault):
    """Inverts the byte at this offset of the file (when the response covers it)."""

    offset: int = 0

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ValueError(f"flip_byte: offset must be >= 0, not {self.offset}")

    def describe(self) -> str:
        return f"flip_byte({self.offset})"


@dataclass(frozen=True)
class RateLimit(Fault):
    """Sends the body at no more than this many bytes per second."""

    bytes_per_s: float = 1_000_000.0

    def __post_init__(self) -> None:
        if self.bytes_per_s <= 0:
            raise ValueError(f"rate_limit: bytes_per_s must be > 0, not {self.bytes_per_s}")

    def describe(self) -> str:
        return f"rate_limit({self.bytes_per_s:g}B/s)"


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: fraction must be within 0..1, not {value}")


# Short constructors, as tests read them: server.set_faults(status(404, "model.bin"))

def status(code: int, path: str | None = None, times: int | None = None) -> Status:
    return Status(path, times, code)


def close_at(fraction: float, path: str | None = None, times: int | None = None) -> CloseAt:
    return CloseAt(path, times, fraction)


def stall(seconds: float, at_fraction: float = 0.0, path: str | None = None,
          times: int | None = None) -> Stall:
    return Stall(path, times, seconds, at_fraction)


def lie_length(delta: int, path: str | None = None, times: int | None = None) -> LieLength:
    return LieLength(path, times, delta)


def flip_byte(offset: int, path: str | None = None, times: int | None = None) -> FlipByte:
    return FlipByte(path, times, offset)


def rate_limit(bytes_per_s: float, path: str | None = None,
               times: int | None = None) -> RateLimit:
    return RateLimit(path, times, bytes_per_s)

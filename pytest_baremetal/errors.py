"""Errors raised by pytest-baremetal, each carrying what a user needs to act on it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

TAIL_LINES = 20

# Report categories (ids) that errors carry; ``reporting/categories.py`` names them.
LAB = "lab"
LAB_BUILD = "lab/build"
GUEST_CRASH = "guest-crash"
GUEST_HANG = "guest-hang"
REGRESSION = "performance-regression"


class BaremetalError(Exception):
    """Base of every error the plugin raises on purpose."""

    #: the report category of this failure, or None (a bug in the test itself)
    category: ClassVar[str | None] = None
    #: a boot that failed with this error may succeed when tried again
    retryable: ClassVar[bool] = False
    #: why earlier tries of this boot failed (set when it was retried)
    retried: tuple[str, ...] = ()


class ConfigError(BaremetalError):
    """A board, profile or option is invalid: names the file, the key, the value, what is allowed.

    ``ConfigError(file, key, problem, value=..., allowed=...)`` reads
    ``<file>: <key>: <problem>[, use one of a, b, c]``; ``ConfigError(message)`` is the whole
    message when no single file or key is to blame.
    """

    def __init__(
        self,
        file: str | Path,
        key: str | None = None,
        problem: str | None = None,
        *,
        value: object = None,
        allowed: Sequence[str] = (),
    ) -> None:
        self.value = value
        self.allowed = tuple(allowed)
        if key is None and problem is None:
            self.file, self.key, self.problem = "", "", str(file)
            message = self.problem
        else:
            self.file, self.key, self.problem = str(file), key or "", problem or ""
            message = f"{self.file}: " + (f"{self.key}: " if self.key else "") + self.problem
        if self.allowed:
            message += ", use one of " + ", ".join(self.allowed)
        super().__init__(message)

    category = LAB


class BootError(BaremetalError):
    """The guest did not come up: why, and where its log is."""

    category = LAB

    def __init__(self, reason: str, log_path: str | Path | None = None) -> None:
        self.reason = reason
        self.log_path = Path(log_path) if log_path is not None else None
        message = reason if log_path is None else f"{reason}\n(log: {log_path})"
        super().__init__(message)


class LabError(BootError):
    """The lab failed, not the build: power, relay, QMP, serial, PXE, the accelerator.

    A boot that fails with a LabError is tried again (``--bm-boot-retries``)."""

    retryable = True


class PowerError(LabError):
    """A power switch (relay, PDU, command) did not do what it was told."""


class RelayError(PowerError):
    """The USB relay board did not answer or switch."""


class QmpError(LabError):
    """QEMU's monitor (QMP) failed or refused a command."""


class SerialError(LabError):
    """The serial console adapter could not be opened or vanished."""


class PxeError(LabError):
    """The network boot (DHCP, TFTP) failed: the firmware said so."""


class FallbackError(LabError):
    """The board's accelerator could not run the guest, and TCG was not (allowed) to."""


class LockError(LabError):
    """The board is held by another run (its lock wait already passed: no retry)."""

    retryable = False


class ImageError(LabError):
    """The build cannot boot: its disk image or EFI application is not what the firmware
    can start (the firmware's own words in the message), or cannot be made."""

    category = LAB_BUILD
    retryable = False  # the same image fails the same way


class GuestError(BaremetalError):
    """The guest itself failed: it crashed, or hung."""

    category = GUEST_CRASH


class GuestCrash(GuestError):
    """The guest died: a death string, or the machine went away."""


class GuestHang(GuestError):
    """The guest stopped printing, or never printed what was awaited."""

    category = GUEST_HANG


class PerformanceRegression(AssertionError):
    """A figure is significantly worse than its history's baseline."""

    category: ClassVar[str | None] = REGRESSION


class EarlierBootFailed(BootError):
    """This boot already failed for an earlier test; ``first`` is that failure."""

    def __init__(self, reason: str, first: BaseException) -> None:
        self.first = first
        super().__init__(reason)


def format_failure(headline: str, last_lines: Sequence[str], log_path: Path | None) -> str:
    """The console failure format: a headline, then the tail of the log, quoted."""
    parts = [headline]
    if log_path is not None or last_lines:
        source = f" of {log_path}" if log_path is not None else ""
        parts.append(f"--- last {len(last_lines)} lines{source} ---")
        parts.extend(last_lines)
    return "\n".join(parts)


class ConsoleError(BaremetalError):
    """A console wait failed: the headline, the last cleaned lines and the raw log path."""

    def __init__(
        self,
        headline: str,
        *,
        last_lines: Sequence[str] = (),
        log_path: str | Path | None = None,
    ) -> None:
        self.headline = headline
        self.last_lines = tuple(last_lines)
        self.log_path = Path(log_path) if log_path is not None else None
        super().__init__(format_failure(headline, self.last_lines, self.log_path))


class ExpectTimeout(ConsoleError, GuestHang):
    """What was awaited did not appear in time, or the guest went quiet (``quiet`` is True)."""

    def __init__(
        self,
        headline: str,
        *,
        awaited: str = "",
        timeout: float = 0.0,
        quiet: bool = False,
        last_lines: Sequence[str] = (),
        log_path: str | Path | None = None,
    ) -> None:
        self.awaited = awaited
        self.timeout = timeout
        self.quiet = quiet
        super().__init__(headline, last_lines=last_lines, log_path=log_path)


class DeathStringSeen(ConsoleError, GuestCrash):
    """A death pattern matched a console line; ``context`` holds the lines printed just after."""

    def __init__(
        self,
        headline: str,
        *,
        pattern: str = "",
        line: str = "",
        context: Sequence[str] = (),
        last_lines: Sequence[str] = (),
        log_path: str | Path | None = None,
    ) -> None:
        self.pattern = pattern
        self.line = line
        self.context = tuple(context)
        super().__init__(headline, last_lines=last_lines, log_path=log_path)


class ConsoleClosed(ConsoleError, GuestCrash):
    """The console reached end of stream (the guest or its transport went away)."""

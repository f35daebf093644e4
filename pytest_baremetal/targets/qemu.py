"""Boots a QEMU board: paused start, console attached, resume, accelerator fallback."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_baremetal.boards import Board, tcg_fallback
from pytest_baremetal.console import Console, SocketTransport
from pytest_baremetal.dut import BootInfo, Dut
from pytest_baremetal.errors import BaremetalError, BootError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import Profile
from pytest_baremetal.qemu.fallback import FIRMWARE_SILENT, STUCK_STATUSES, classify
from pytest_baremetal.qemu.process import QemuProcess, launch

DEFAULT_FIRMWARE_TIMEOUT = 30.0
DEFAULT_QUIET_TIMEOUT = 120.0
#: After the first byte, how long an accelerator must keep running before it is trusted.
ACCEL_PROBATION_S = 1.0


@dataclass
class QemuPower:
    """Power for a QEMU board: the process is the machine."""

    process: QemuProcess

    def wait_off(self, timeout: float) -> int | None:
        return self.process.wait(timeout)

    def off(self) -> None:
        self.process.stop()

    def is_on(self) -> bool:
        return self.process.returncode is None and self.process.pid is not None


def _start(board: Board, image: Path, log_dir: Path, profile: Profile,
           quiet_timeout: float | None) -> tuple[QemuProcess, Console]:
    process = launch(board, image, log_dir)
    try:
        transport = SocketTransport(process.take_serial_socket())
        console = Console(transport, log_dir, profile, name=board.name,
                          quiet_timeout=quiet_timeout).start()
    except BaseException:
        process.stop()
        raise
    try:
        process.resume()
    except BaseException:
        console.close()
        process.stop()
        raise
    return process, console


def _first_output(process: QemuProcess, console: Console, timeout: float) -> str | None:
    """Waits for the firmware's first byte; returns a failure reason or None."""
    deadline = time.monotonic() + timeout
    while console.first_byte_time is None:
        if process.returncode is not None:
            break
        if time.monotonic() >= deadline:
            break
        console.wait_for_output(0.2)
    seen = console.first_byte_time is not None
    if seen and process.returncode is None:
        # An accelerator can print a little and then stop the guest (KVM pauses on an
        # emulation failure): give it a moment and look again.
        console.wait_for_output(ACCEL_PROBATION_S)
    status = process.status()
    if seen and process.returncode is None and status not in STUCK_STATUSES:
        return None
    if seen and process.returncode == 0:
        return None  # a quick guest that already powered off
    return _failure_reason(process.stderr_text(), status, seen, process.returncode) or (
        f"no console output within {timeout:.0f} s")


def _failure_reason(stderr: str, status: str | None, seen: bool,
                    returncode: int | None) -> str | None:
    """An accelerator signature if there is one, else what QEMU said when it exited."""
    reason = classify(stderr, status, seen)
    if returncode is not None and (reason is None or reason.startswith(FIRMWARE_SILENT)):
        last = [line for line in stderr.splitlines() if line.strip()][-3:]
        how = "before the guest ran" if returncode < 0 else f"with status {returncode}"
        reason = f"QEMU exited {how}: " + (
            " | ".join(last) or "nothing on stderr")
    return reason


def boot_qemu(board: Board, config: GuestConfig, image: Path, log_dir: Path,
              profile: Profile, build: object, *, allow_fallback: bool = True) -> Dut:
    """Boots `board`; when its accelerator cannot run the guest, boots again with TCG."""
    firmware_timeout = board.timeouts.firmware or DEFAULT_FIRMWARE_TIMEOUT
    info = BootInfo(board=board.name, accelerator=board.accel,
                    requested_accelerator=board.accel, log_dir=log_dir)
    current = board
    while True:
        attempt_dir = log_dir / f"{len(info.attempts) + 1}-{current.accel}"
        info.started_at = time.monotonic()
        stderr_path = attempt_dir / "qemu.stderr"
        try:
            process, console = _start(current, image, attempt_dir, profile,
                                      board.timeouts.quiet or DEFAULT_QUIET_TIMEOUT)
        except BaremetalError as error:
            # QEMU died before the guest could run (KVM aborting on an MSR, say).
            stderr = stderr_path.read_text(errors="replace") if stderr_path.is_file() else ""
            reason = (_failure_reason(stderr, None, False, returncode=-1)
                      or f"QEMU did not start: {error}")
        else:
            first = _first_output(process, console, firmware_timeout)
            if first is None:
                break
            reason = first
            console.close()
            process.stop()
        if not reason.startswith(f"{current.accel}:"):
            reason = f"{current.accel}: {reason}"
        info.attempts.append(reason)
        can_fall_back = current.accel != "tcg" and board.fallback == "tcg"
        if not can_fall_back or not allow_fallback:
            hint = (" (fallback to TCG disabled by --bm-no-fallback)"
                    if can_fall_back and not allow_fallback else "")
            raise BootError(f"{board.name}: {current.accel} could not boot the guest: "
                            f"{reason}{hint}\nQEMU stderr: {stderr_path}")
        info.fallback_reason = reason
        current = tcg_fallback(board)
    info.accelerator = current.accel
    info.argv = list(process.argv)
    if console.first_byte_time is not None:
        info.first_output_s = console.first_byte_time
    power = QemuPower(process)
    dut = Dut(current, config, console, power, profile, info, build)
    with contextlib.suppress(OSError):
        (log_dir / "boot-info.txt").write_text(_describe(info))
    return dut


def _describe(info: BootInfo) -> str:
    lines = [f"board: {info.board}", f"accelerator: {info.accelerator} "
             f"(requested {info.requested_accelerator})"]
    if info.fallback_reason:
        lines.append(f"fallback: {info.fallback_reason}")
    lines += [f"attempt failed: {a}" for a in info.attempts]
    lines.append("argv: " + " ".join(info.argv))
    return "\n".join(lines) + "\n"

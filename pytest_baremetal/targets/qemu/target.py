"""Boots a QEMU board: paused start, console attached, resume, accelerator fallback."""

from __future__ import annotations

import contextlib
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_baremetal.boards import Board
from pytest_baremetal.bus import BootPhase, ConsoleOpened, EventBus
from pytest_baremetal.console import Console, SocketTransport
from pytest_baremetal.dut import BootDescription, BootInfo, Dut
from pytest_baremetal.errors import BaremetalError, BootError, FallbackError
from pytest_baremetal.markers import Profile
from pytest_baremetal.targets import BootRequest, TargetOptions, bootwatch
from pytest_baremetal.targets.qemu import spec as qemu_spec
from pytest_baremetal.targets.qemu.fallback import FIRMWARE_SILENT, STUCK_STATUSES, classify
from pytest_baremetal.targets.qemu.process import QemuProcess, launch
from pytest_baremetal.targets.qemu.spec import QemuSpec

DEFAULT_FIRMWARE_TIMEOUT = 30.0
DEFAULT_QUIET_TIMEOUT = 120.0
#: After the first byte, how long an accelerator must keep running before it is trusted.
ACCEL_PROBATION_S = 1.0
#: How long a QEMU whose console ended may take to exit before its state is judged.
EXIT_GRACE_S = 2.0


@dataclass
class QemuPower:
    """Power for a QEMU board: the process is the machine."""

    process: QemuProcess
    senses_off = True

    def wait_off(self, timeout: float) -> int | None:
        return self.process.wait(timeout)

    def off(self) -> None:
        self.process.stop()

    def is_on(self) -> bool:
        return self.process.returncode is None and self.process.pid is not None


class QemuTarget:
    """A QEMU board: each boot is a fresh QEMU process."""

    def __init__(self, board: Board[QemuSpec], options: TargetOptions) -> None:
        self.board = board
        self.options = options
        self._facts: dict[str, str] = {}

    def boot(self, request: BootRequest) -> Dut:
        dut = boot_qemu(self.board, request, allow_fallback=self.options.allow_fallback)
        self._facts.update(dut.info.description.facts)
        return dut

    def describe(self) -> str:
        return qemu_spec.summary(self.board.spec)

    def facts(self) -> dict[str, str]:
        """QEMU's version (from its QMP greeting, learned at the first boot) and firmware."""
        return dict(self._facts)

    def close(self) -> None:
        """Nothing to release: each Dut owns its QEMU."""


def _start(board: Board[QemuSpec], image: Path, log_dir: Path, profile: Profile,
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


def _first_output(process: QemuProcess, console: Console, watch: bootwatch.Watch,
                  bus: EventBus) -> str | None:
    """Waits for the firmware's first byte; returns a failure reason or None."""
    seen = bootwatch.first_output(console, watch, bus,
                                  alive=lambda: process.returncode is None)
    if seen and process.returncode is None:
        # An accelerator can print a little and then stop the guest (KVM pauses on an
        # emulation failure): give it a moment (or its next words) and look again.
        bootwatch.hold(console, "the accelerator's probation", ACCEL_PROBATION_S,
                       lambda: process.returncode is not None)
    if console.closed and process.returncode is None:
        process.wait(EXIT_GRACE_S)  # the console ends as QEMU exits: learn how it exited
    status = process.status()
    if seen and process.returncode is None and status not in STUCK_STATUSES:
        return None
    if seen and process.returncode == 0:
        return None  # a quick guest that already powered off
    return _failure_reason(process.stderr_text(), status, seen, process.returncode) or (
        f"no console output within {watch.firmware_timeout:.0f} s")


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


def boot_qemu(board: Board[QemuSpec], request: BootRequest, *,
              allow_fallback: bool = True) -> Dut:
    """Boots `board`; when its accelerator cannot run the guest, boots again with TCG.

    Returns once the guest printed its banner (when the profile has a ``boot`` event); a
    build the firmware cannot boot fails here, with the firmware's words.
    """
    log_dir, bus = request.log_dir, request.bus
    watch = bootwatch.Watch(
        board.name, board.timeouts.firmware or DEFAULT_FIRMWARE_TIMEOUT,
        board.timeouts.boot or bootwatch.DEFAULT_BOOT_TIMEOUT, first_option_is_build=True)
    spec = board.spec
    info = BootInfo(board=board.name, accelerator=spec.accel,
                    requested_accelerator=spec.accel, log_dir=log_dir,
                    firmware_timeout_s=watch.firmware_timeout)
    current = board
    while True:
        attempt_dir = log_dir / f"{len(info.attempts) + 1}-{current.spec.accel}"
        info.started_at = time.monotonic()
        stderr_path = attempt_dir / "qemu.stderr"
        bus.publish(BootPhase(board.name, f"power on ({current.spec.accel})", 0.0))
        try:
            process, console = _start(current, request.image, attempt_dir, request.profile,
                                      board.timeouts.quiet or DEFAULT_QUIET_TIMEOUT)
        except BaremetalError as error:
            # QEMU died before the guest could run (KVM aborting on an MSR, say).
            stderr = stderr_path.read_text(errors="replace") if stderr_path.is_file() else ""
            reason = (_failure_reason(stderr, None, False, returncode=-1)
                      or f"QEMU did not start: {error}")
        else:
            bus.publish(ConsoleOpened(board.name, console))
            try:
                first = _first_output(process, console, watch, bus)
            except BaseException:  # a death string in the firmware's first words, Ctrl-C
                console.close()
                process.stop()
                raise
            if first is None:
                break
            reason = first
            console.close()
            process.stop()
        accel = current.spec.accel
        if not reason.startswith(f"{accel}:"):
            reason = f"{accel}: {reason}"
        info.attempts.append(reason)
        can_fall_back = accel != "tcg" and spec.fallback_to_tcg
        if not can_fall_back or not allow_fallback:
            hint = (" (fallback to TCG disabled by --bm-no-fallback)"
                    if can_fall_back and not allow_fallback else "")
            # TCG failing is QEMU or the board file, not an accelerator: no retry helps
            kind = FallbackError if accel != "tcg" else BootError
            raise kind(f"{board.name}: {accel} could not boot the guest: "
                        f"{reason}{hint}\nQEMU stderr: {stderr_path}")
        info.fallback_reason = reason
        bus.publish(BootPhase(board.name, "accelerator failed, falling back to TCG",
                              time.monotonic() - info.started_at, reason))
        current = qemu_spec.tcg_fallback(board)
    info.accelerator = current.spec.accel
    info.description = _description(process, info)
    if console.first_byte_time is not None:
        info.first_output_s = console.first_byte_time
    power = QemuPower(process)
    dut = Dut(current, request.config, console, power, request.profile, info, request.build,
              bus=bus)
    with contextlib.suppress(OSError):
        (log_dir / "boot-info.txt").write_text(_describe(info))
    try:
        bootwatch.guest_banner(console, request.profile, watch, bus, info.started_at)
    except BaseException:
        dut.close()
        raise
    return dut


def _description(process: QemuProcess, info: BootInfo) -> BootDescription:
    from pytest_baremetal.reporting.environment import firmware_files

    text = shlex.join(process.argv)
    if info.attempts:
        text += "\n\n# attempts\n" + "\n".join(info.attempts)
    facts: dict[str, str] = {}
    if process.qmp is not None and process.qmp.version:
        facts["qemu"] = f"QEMU {process.qmp.version} ({process.argv[0]})"
    firmware = [str(path) for path in firmware_files(process.argv)]
    if firmware:
        facts["firmware"] = "; ".join(firmware)
    cpu = next((process.argv[i + 1] for i, a in enumerate(process.argv[:-1]) if a == "-cpu"),
               "")
    return BootDescription("QEMU command line", text + "\n", command=tuple(process.argv),
                           facts=facts, labels={"cpu": cpu} if cpu else {})


def _describe(info: BootInfo) -> str:
    lines = [f"board: {info.board}", f"accelerator: {info.accelerator} "
             f"(requested {info.requested_accelerator})"]
    if info.fallback_reason:
        lines.append(f"fallback: {info.fallback_reason}")
    lines += [f"attempt failed: {a}" for a in info.attempts]
    lines.append("argv: " + " ".join(info.description.command))
    return "\n".join(lines) + "\n"

"""Boots a physical board: power off, stage, attach the console, power on, firmware, guest.

The console is open before the relay closes, so the firmware's first bytes are logged; a
PXE boot that fetches nothing is recognised from the firmware's own messages; whatever
fails, the board is switched off before the error propagates.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from pathlib import Path

from pytest_baremetal.boards import Board
from pytest_baremetal.build_under_test import BuildUnderTest
from pytest_baremetal.bus import BootPhase, ConsoleOpened
from pytest_baremetal.console import Console
from pytest_baremetal.dut import BootDescription, BootInfo, Dut
from pytest_baremetal.errors import BootError, ConfigError, PxeError, SerialError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.targets import BootRequest, TargetOptions, bootwatch
from pytest_baremetal.targets.physical import pxe
from pytest_baremetal.targets.physical.lab import Lab, lab_for
from pytest_baremetal.targets.physical.schema import PhysicalSpec
from pytest_baremetal.targets.physical.serial_transport import SerialTransport

DEFAULT_FIRMWARE_TIMEOUT = 60.0
DEFAULT_BOOT_TIMEOUT = 300.0
DEFAULT_QUIET_TIMEOUT = 120.0
_PXE_FAILURE = re.compile("|".join(pxe.PXE_FAILURES))


class PhysicalTarget:
    """A machine on the bench (or its simulation): relay power, serial console, PXE/disk."""

    def __init__(self, board: Board[PhysicalSpec], options: TargetOptions) -> None:
        self.board = board

    def boot(self, request: BootRequest) -> Dut:
        return boot_physical(self.board, request)

    def describe(self) -> str:
        spec = self.board.spec
        return (f"physical ({spec.power.kind} power, {spec.boot.kind} boot, console "
                f"{spec.console.port.describe()})")

    def facts(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        """The lab is released at exit (it may serve later sessions of this process)."""


def _firmware_timeout(board: Board[PhysicalSpec]) -> float:
    """Seconds from power-on to the firmware's first console byte."""
    return board.timeouts.firmware or DEFAULT_FIRMWARE_TIMEOUT


def boot_physical(board: Board[PhysicalSpec], request: BootRequest) -> Dut:
    spec = board.spec
    bus, log_dir, profile = request.bus, request.log_dir, request.profile
    lab = lab_for(board.name, spec)
    info = BootInfo(board=board.name, accelerator="hardware", requested_accelerator="hardware",
                    log_dir=log_dir,
                    firmware_timeout_s=_firmware_timeout(board))
    power = lab.power
    console: Console | None = None
    steps: list[str] = []
    try:
        if lab.place is not None:
            steps.append(lab.place.describe())
        power.off()
        steps.append(f"power off ({spec.power.kind}), wait {spec.off_wait:g} s")
        if lab.console is not None:  # the previous boot's console: its lines stay readable
            lab.console.close()
            lab.console = None
        time.sleep(spec.off_wait)
        steps.append(_stage(spec, lab, request.config, request.image, request.build))
        transport = SerialTransport(lab.console_resolver(), spec.console.port.baud,
                                    reconnect=spec.console.reconnect, name=board.name)
        steps.append(f"console {transport.port_name} at {transport.baud} baud")
        console = Console(transport, log_dir, profile, name=board.name,
                          quiet_timeout=board.timeouts.quiet or DEFAULT_QUIET_TIMEOUT).start()
        info.started_at = time.monotonic()
        lab.console = console
        bus.publish(ConsoleOpened(board.name, console))
        power.on()
        steps.append("power on")
        bus.publish(BootPhase(board.name, f"power on ({spec.power.kind})", 0.0))
        _wait_for_guest(board, console, request)
    except BaseException as error:
        with contextlib.suppress(Exception):
            power.off()
        if console is not None:
            console.close()
        _write_info(log_dir, info, [*steps, f"failed: {error}", "power off"])
        raise
    if console.first_byte_time is not None:
        info.first_output_s = console.first_byte_time
    info.description = describe_steps(steps)
    _write_info(log_dir, info, steps)
    return Dut(board, request.config, console, power, profile, info, request.build, bus=bus)


def describe_steps(steps: list[str]) -> BootDescription:
    """A physical boot as a report shows it: numbered steps, no command line, no facts."""
    return BootDescription("physical boot steps",
                           "".join(f"{n}. {step}\n" for n, step in enumerate(steps, 1)))


def _stage(spec: PhysicalSpec, lab: Lab, config: GuestConfig, image: Path,
           build: BuildUnderTest) -> str:
    """Puts this boot's build where the machine will find it; says what it did."""
    boot = spec.boot
    if boot.pxe is not None:
        efi = build.efi
        if efi is None:
            raise ConfigError(spec.where, "physical.boot.pxe", "PXE boots an EFI application "
                              "(and its files); a ready disk image (--bm-image) cannot be "
                              "served over TFTP: use boot: disk")
        files = dict(build.files)
        config_file = build.config_file
        if config_file:
            cfg = boot.pxe.tftp_root.parent / f".{config_file}.{lab.name}"
            cfg.parent.mkdir(parents=True, exist_ok=True)
            cfg.write_text(config.render())
            files[config_file] = cfg
        names = pxe.stage(boot.pxe.tftp_root, boot.pxe.bootfile, Path(efi), files,
                          ipxe=boot.pxe.ipxe)
        lab.ensure_pxe_service()
        return f"staged {', '.join(names)} into {boot.pxe.tftp_root} ({boot.pxe.server})"
    disk = boot.disk
    assert disk is not None
    if disk.write_to is not None:
        part = disk.write_to.with_name(disk.write_to.name + ".part")
        shutil.copyfile(image, part)
        part.replace(disk.write_to)
        return f"wrote {image} to {disk.write_to}"
    if disk.command:
        argv = [a.replace("{image}", str(image)) for a in disk.command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise BootError(f"writing the disk image failed ({argv}, status "
                            f"{done.returncode}): {(done.stderr or done.stdout)[-800:]}")
        return f"wrote {image} with {argv[0]}"
    if config.items:
        raise ConfigError(spec.where, "physical.boot", f"the image already on the machine's "
                          f"disk cannot take guest settings {config.label()}: use PXE or "
                          "disk: {write_to: ...}")
    return "booting the image already on the machine's disk"


def _wait_for_guest(board: Board[PhysicalSpec], console: Console,
                    request: BootRequest) -> None:
    """First byte within the firmware timeout; then the guest's banner (or the firmware's
    own failure, PXE's included) within the boot timeout."""
    spec = board.spec
    failures: list[tuple[re.Pattern[str], str, type[BootError], str]] = []
    if spec.boot.pxe is not None:
        failures.append((_PXE_FAILURE, "PXE boot failed", PxeError,
                         f"(TFTP root {spec.boot.pxe.tftp_root}, bootfile "
                         f"{spec.boot.pxe.bootfile})"))
    watch = bootwatch.Watch(board.name, _firmware_timeout(board),
                            board.timeouts.boot or DEFAULT_BOOT_TIMEOUT, failures)
    started = time.monotonic()
    if not bootwatch.first_output(console, watch, request.bus):
        raise SerialError(f"{board.name}: no console output within {watch.firmware_timeout:.0f} "
                        f"s of power-on (console {spec.console.port.describe()}, power "
                        f"{spec.power.kind}): is the machine powered and the adapter on "
                        "its serial port?", console.log_path)
    bootwatch.guest_banner(console, request.profile, watch, request.bus, started)


def _write_info(log_dir: Path, info: BootInfo, steps: list[str]) -> None:
    with contextlib.suppress(OSError):
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "boot-info.txt").write_text(
            f"board: {info.board}\n" + "".join(f"step: {s}\n" for s in steps))

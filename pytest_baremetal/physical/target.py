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
from pytest_baremetal.console import Console
from pytest_baremetal.dut import BootInfo, Dut
from pytest_baremetal.errors import BootError, ConfigError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.markers import Profile
from pytest_baremetal.physical import pxe
from pytest_baremetal.physical.lab import Lab, lab_for
from pytest_baremetal.physical.schema import PhysicalSpec, parse
from pytest_baremetal.physical.serial_transport import SerialTransport

DEFAULT_FIRMWARE_TIMEOUT = 60.0
DEFAULT_BOOT_TIMEOUT = 300.0
DEFAULT_QUIET_TIMEOUT = 120.0
_PXE_FAILURE = re.compile("|".join(pxe.PXE_FAILURES))


def spec_of(board: Board) -> PhysicalSpec:
    where = str(board.path or board.name)
    base = board.path.parent if board.path is not None else Path.cwd()
    return parse(board.physical or {}, where, base)


def boot_physical(board: Board, config: GuestConfig, image: Path, log_dir: Path,
                  profile: Profile, build: object) -> Dut:
    spec = spec_of(board)
    lab = lab_for(board.name, spec)
    info = BootInfo(board=board.name, accelerator="hardware", requested_accelerator="hardware",
                    log_dir=log_dir)
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
        steps.append(_stage(spec, lab, config, image, build))
        transport = SerialTransport(lab.console_resolver(), spec.console.port.baud,
                                    reconnect=spec.console.reconnect, name=board.name)
        steps.append(f"console {transport.port_name} at {transport.baud} baud")
        console = Console(transport, log_dir, profile, name=board.name,
                          quiet_timeout=board.timeouts.quiet or DEFAULT_QUIET_TIMEOUT).start()
        info.started_at = time.monotonic()
        lab.console = console
        power.on()
        steps.append("power on")
        _wait_for_guest(board, spec, console, profile)
    except BaseException as error:
        with contextlib.suppress(Exception):
            power.off()
        if console is not None:
            console.close()
        _write_info(log_dir, info, [*steps, f"failed: {error}", "power off"])
        raise
    if console.first_byte_time is not None:
        info.first_output_s = console.first_byte_time
    info.argv = steps
    _write_info(log_dir, info, steps)
    return Dut(board, config, console, power, profile, info, build)


def _stage(spec: PhysicalSpec, lab: Lab, config: GuestConfig, image: Path,
           build: object) -> str:
    """Puts this boot's build where the machine will find it; says what it did."""
    boot = spec.boot
    if boot.pxe is not None:
        efi = getattr(build, "efi", None)
        if efi is None:
            raise ConfigError(spec.where, "physical.boot.pxe", "PXE boots an EFI application "
                              "(and its files); a ready disk image (--bm-image) cannot be "
                              "served over TFTP: use boot: disk")
        files = dict(getattr(build, "files", {}))
        config_file = getattr(build, "config_file", None)
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


def _wait_for_guest(board: Board, spec: PhysicalSpec, console: Console,
                    profile: Profile) -> None:
    """First byte within the firmware timeout; with PXE, the guest's banner (or the
    firmware's PXE error) within the boot timeout."""
    firmware_timeout = board.timeouts.firmware or DEFAULT_FIRMWARE_TIMEOUT
    deadline = time.monotonic() + firmware_timeout
    while console.first_byte_time is None:
        if time.monotonic() >= deadline:
            raise BootError(f"{board.name}: no console output within {firmware_timeout:.0f} s "
                            f"of power-on (console {spec.console.port.describe()}, power "
                            f"{spec.power.kind}): is the machine powered and the adapter on "
                            "its serial port?", console.log_path)
        console.wait_for_output(0.2)
    if not profile.provides("boot"):
        return
    boot_timeout = board.timeouts.boot or DEFAULT_BOOT_TIMEOUT
    deadline = time.monotonic() + boot_timeout
    seen = 0
    while not console.find_events("boot"):
        lines = list(console.lines)
        for line in lines[seen:]:
            if spec.boot.pxe is not None and _PXE_FAILURE.search(line.text):
                raise BootError(f"{board.name}: PXE boot failed, the firmware said "
                                f"{line.text.strip()!r} (TFTP root "
                                f"{spec.boot.pxe.tftp_root}, bootfile "
                                f"{spec.boot.pxe.bootfile})", console.log_path)
        seen = len(lines)
        if time.monotonic() >= deadline:
            raise BootError(f"{board.name}: the guest's banner did not appear within "
                            f"{boot_timeout:.0f} s of power-on", console.log_path)
        console.wait_for_output(0.2)


def _write_info(log_dir: Path, info: BootInfo, steps: list[str]) -> None:
    with contextlib.suppress(OSError):
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / "boot-info.txt").write_text(
            f"board: {info.board}\n" + "".join(f"step: {s}\n" for s in steps))

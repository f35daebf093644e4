"""The boot waits of both target kinds, on the console's one wait engine, over a real socket
pair: first byte, the firmware's failures in its own words, the banner, hangs, end of stream."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_baremetal.bus import BootPhase, EventBus, Message
from pytest_baremetal.console import console as console_mod
from pytest_baremetal.console.console import Console
from pytest_baremetal.console.transport import SocketTransport
from pytest_baremetal.errors import BootError, DeathStringSeen, ImageError, PxeError
from pytest_baremetal.markers.profile import reference_profile
from pytest_baremetal.targets import bootwatch

BANNER = "[boot] name=g version=1.2.3 build=abc"


class Box:
    """A console on one end of a socket pair, the firmware on the other, phases collected."""

    def __init__(self, tmp_path: Path, quiet: float | None = None) -> None:
        host, self.far = socket.socketpair()
        self.console = Console(SocketTransport(host), tmp_path, reference_profile(), "b",
                               quiet_timeout=quiet).start()
        self.bus = EventBus()
        self.phases: list[BootPhase] = []
        self.bus.subscribe(self._on)
        self._threads: list[threading.Thread] = []

    def _on(self, message: Message) -> None:
        if isinstance(message, BootPhase):
            self.phases.append(message)

    def say(self, *lines: str, end: str = "\r\n") -> None:
        self.far.sendall("".join(line + end for line in lines).encode())

    def later(self, delay: float, *lines: str) -> None:
        def run() -> None:
            time.sleep(delay)
            self.say(*lines)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        for thread in self._threads:
            thread.join(timeout=10)
        self.far.close()
        self.console.close()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    made = Box(tmp_path)
    yield made
    made.close()


def watch(boot: float = 20.0, firmware: float = 10.0, **kw: object) -> bootwatch.Watch:
    return bootwatch.Watch("b1", firmware, boot, **kw)  # type: ignore[arg-type]


def test_banner_after_firmware_publishes_the_phases(box: Box) -> None:
    box.later(0.2, "BdsDxe: loading Boot0001", "BdsDxe: starting Boot0001")
    box.later(0.5, BANNER)
    started = time.monotonic()
    assert bootwatch.first_output(box.console, watch(), box.bus)
    bootwatch.guest_banner(box.console, reference_profile(), watch(), box.bus, started)
    names = [p.phase for p in box.phases]
    assert names == ["firmware first output", "guest banner"]
    assert box.phases[-1].detail == BANNER


def test_silent_firmware_is_false_within_the_firmware_timeout(box: Box) -> None:
    started = time.monotonic()
    assert not bootwatch.first_output(box.console, watch(firmware=0.5), box.bus)
    assert 0.4 < time.monotonic() - started < 5
    assert box.phases == []


def test_machine_gone_ends_the_first_byte_wait_at_once(box: Box) -> None:
    gone_at = time.monotonic() + 0.3
    started = time.monotonic()
    assert not bootwatch.first_output(box.console, watch(firmware=30), box.bus,
                                      alive=lambda: time.monotonic() < gone_at)
    assert time.monotonic() - started < 5  # not the 30 s firmware timeout


def test_build_the_firmware_cannot_load_fails_fast_with_its_words(box: Box) -> None:
    box.later(0.2, "BdsDxe: failed to load Boot0001 \"UEFI QEMU HARDDISK\" from "
              "PciRoot(0x0): Not Found")
    started = time.monotonic()
    with pytest.raises(ImageError) as info:
        bootwatch.guest_banner(box.console, reference_profile(),
                               watch(boot=60, first_option_is_build=True), box.bus, started)
    assert "could not boot this build: BdsDxe: failed to load Boot0001" in str(info.value)
    assert time.monotonic() - started < 10  # not the 60 s boot timeout
    assert any(p.phase.startswith("firmware: BdsDxe: failed to load") for p in box.phases)


def test_firmware_giving_up_at_its_shell_prompt_fails_fast(box: Box) -> None:
    box.say("BdsDxe: failed to load Boot0002 \"PXE\": Not Found", "UEFI Interactive Shell v2.2")
    box.far.sendall(b"Shell> ")  # an incomplete last line
    with pytest.raises(ImageError, match=r"nothing it could boot.*gave up: BdsDxe: failed"):
        bootwatch.guest_banner(box.console, reference_profile(), watch(boot=60), box.bus,
                               time.monotonic())


def test_lab_failure_pattern_raises_the_lab_error(box: Box) -> None:
    rule = (re.compile(r"PXE-E\d+"), "PXE boot failed", PxeError, "(TFTP root /srv)")
    box.later(0.2, "PXE-E18: Server response timeout.")
    with pytest.raises(PxeError, match=r"PXE boot failed, the firmware said 'PXE-E18.*/srv"):
        bootwatch.guest_banner(box.console, reference_profile(),
                               watch(lab_failures=(rule,)), box.bus, time.monotonic())


def test_no_banner_in_time_says_what_the_firmware_said(box: Box) -> None:
    box.say("Boot Failed. EFI Floppy")
    with pytest.raises(ImageError) as info:
        bootwatch.guest_banner(box.console, reference_profile(), watch(boot=1.0), box.bus,
                               time.monotonic())
    text = str(info.value)
    assert "banner did not appear within 1 s of power-on" in text
    assert "the firmware said: Boot Failed. EFI Floppy" in text


def test_machine_gone_before_the_banner_is_a_boot_error(box: Box) -> None:
    box.say("BdsDxe: loading Boot0001")
    box.far.shutdown(socket.SHUT_RDWR)
    with pytest.raises(BootError, match="went away before the guest's banner") as info:
        bootwatch.guest_banner(box.console, reference_profile(), watch(boot=30), box.bus,
                               time.monotonic())
    assert not isinstance(info.value, ImageError)


def test_death_string_before_the_banner_ends_the_boot(box: Box) -> None:
    box.later(0.2, "!!!! X64 Exception Type - 0E(#PF - Page-Fault)  CPU Apic ID - 00000000 !!!!")
    with pytest.raises(DeathStringSeen, match="guest's banner"):
        bootwatch.guest_banner(box.console, reference_profile(), watch(boot=30), box.bus,
                               time.monotonic())


def test_a_fast_guests_error_during_the_probation_is_left_to_the_next_wait(box: Box) -> None:
    """A guest that fails at once (a bad config value) prints its banner and its `[error]`
    (a death string of the reference profile) within the accelerator's probation: the hold
    ends without failing, the banner is the banner, and the test's wait gets the error."""
    box.say("BdsDxe: starting Boot0001")
    assert bootwatch.first_output(box.console, watch(), box.bus)
    box.later(0.1, BANNER, '[error] where=cfg file=run.cfg reason=bad_value detail="steps"',
              "[done] status=error")
    start = time.monotonic()
    bootwatch.hold(box.console, "the accelerator's probation", 5.0, lambda: False)
    assert time.monotonic() - start < 4
    time.sleep(box.console.death_context + 0.2)  # the death and its context are all in
    bootwatch.guest_banner(box.console, reference_profile(), watch(), box.bus,
                           time.monotonic())
    assert box.console.expect_event("error", 5).fields["reason"] == "bad_value"
    assert box.console.expect_event("done", 5).fields["status"] == "error"


def test_quiet_firmware_is_a_hang_before_the_boot_timeout(tmp_path: Path) -> None:
    box = Box(tmp_path, quiet=0.5)
    try:
        box.say("BdsDxe: loading Boot0001")
        started = time.monotonic()
        with pytest.raises(ImageError, match="went quiet before the guest's banner"):
            bootwatch.guest_banner(box.console, reference_profile(), watch(boot=60), box.bus,
                                   started)
        assert time.monotonic() - started < 10
    finally:
        box.close()


def test_failure_found_beyond_the_memory_window(box: Box,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A firmware that prints more than the console keeps in memory: the boot wait reads
    lines by index, so its failure line is still found."""
    monkeypatch.setattr(console_mod, "WINDOW_CHARS", 16 * 1024)
    monkeypatch.setattr(console_mod, "HEAD_LINES", 10)
    noise = [f"PROGRESS: driver {i:05d} " + "x" * 60 for i in range(3000)]  # ~250 KB
    box.later(0.1, *noise, "BdsDxe: failed to load Boot0001 \"disk\": Not Found")
    with pytest.raises(ImageError, match="could not boot this build"):
        bootwatch.guest_banner(box.console, reference_profile(),
                               watch(boot=60, first_option_is_build=True), box.bus,
                               time.monotonic())
    assert box.console.line_count == 3001
    assert len(box.console.lines) < 1000  # the window really was in force

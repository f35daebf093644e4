"""From power-on to the guest's banner: firmware output, firmware failures, the boot timeout.

Both target kinds use it. The firmware's own words decide a boot that cannot succeed: when
every boot option failed (OVMF drops to its ``Shell>`` or says no bootable option was found),
the boot ends at once with the lines the firmware printed, instead of waiting for a guest
that will never speak. Every phase is published on the bus (and so logged). Every wait
here is the console's (:meth:`Console.wait_until`): death strings end a boot too, and a
console silent for the board's ``quiet`` timeout before the banner is a hang.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_baremetal.bus import BootPhase, EventBus
from pytest_baremetal.console import Console
from pytest_baremetal.errors import (
    BootError,
    ConsoleClosed,
    DeathStringSeen,
    ExpectTimeout,
    ImageError,
)
from pytest_baremetal.markers import Event, Profile

#: The boot manager could not load or start a boot option.
OPTION_FAILED = re.compile(r"BdsDxe: failed to (?:load|start) Boot\w+")
#: Lines worth quoting when a boot fails: the boot manager's account of each option.
FIRMWARE_NOTES = re.compile(
    r"BdsDxe: failed to (?:load|start) Boot\w+.*|Boot Failed\..*|"
    r"Image Load Error.*|Load Error.*|Command Error Status:.*|Not Found\.?$")
#: The firmware has given up on every boot option: nothing more will come.
FIRMWARE_GAVE_UP = re.compile(
    r"^\s*Shell> ?$|UEFI Interactive Shell v\d|No bootable option or device was found|"
    r"No bootable device")
#: How long a boot may wait for the guest's banner when the board gives no ``boot`` timeout.
DEFAULT_BOOT_TIMEOUT = 45.0
#: How often conditions outside the console (QEMU still running?) are looked at.
POLL_S = 0.2


@dataclass(frozen=True)
class Watch:
    """What to watch for on one board."""

    board: str
    firmware_timeout: float
    boot_timeout: float
    #: patterns that end the boot with a lab fault (PXE errors): pattern, what failed, the
    #: error type, and what to add after the firmware's words
    lab_failures: Sequence[tuple[re.Pattern[str], str, type[BootError], str]] = ()
    #: the first boot option is the build (a QEMU disk with bootindex 0): when the firmware
    #: cannot load or start it, nothing later in the boot order is the build under test
    first_option_is_build: bool = False


def first_output(console: Console, watch: Watch, bus: EventBus,
                 alive: Callable[[], bool] | None = None) -> bool:
    """Waits for the firmware's first byte; True when it came within the firmware timeout
    (False at once when ``alive`` says the machine is gone, or the console ended)."""

    def came() -> bool | None:
        if console.first_byte_time is not None:
            return True
        return True if alive is not None and not alive() else None

    with contextlib.suppress(ExpectTimeout, ConsoleClosed):
        console.wait_until(came, "the firmware's first output", watch.firmware_timeout,
                           hang=False, idle=False, poll=POLL_S if alive is not None else None)
    if console.first_byte_time is None:
        return False
    bus.publish(BootPhase(watch.board, "firmware first output", console.first_byte_time))
    return True


def hold(console: Console, what: str, seconds: float, done: Callable[[], bool]) -> None:
    """Watches the console for up to ``seconds``, until it prints more, ends, or ``done()``
    says so (the machine stopped, for example). A death string ends the hold without failing
    it: a fast guest may print its own ``[error]`` before the hold is over, and the waits
    after it (the banner, the test's own) report the death where it belongs."""
    before = (console.line_count, console.partial_line)

    def moved() -> bool:
        return done() or (console.line_count, console.partial_line) != before

    with contextlib.suppress(ExpectTimeout, ConsoleClosed, DeathStringSeen):
        console.wait_until(lambda: moved() or None, what, seconds, hang=False, idle=False,
                           poll=POLL_S)


def guest_banner(console: Console, profile: Profile, watch: Watch, bus: EventBus,
                 started: float) -> None:
    """Waits for the guest's ``boot`` event, failing fast on the firmware's own failure."""
    if not profile.provides("boot"):
        return
    deadline = started + watch.boot_timeout
    seen = 0
    notes: list[str] = []

    def banner() -> Event | None:
        nonlocal seen
        found = console.find_events("boot")
        if found:
            return found[0]
        for _, line in console.lines_from(seen):
            text = line.text
            for pattern, what, error, detail in watch.lab_failures:
                if pattern.search(text):
                    raise error(f"{watch.board}: {what}, the firmware said "
                                f"{text.strip()!r} {detail}", console.log_path)
            if FIRMWARE_NOTES.search(text):
                notes.append(text.strip())
                bus.publish(BootPhase(watch.board, "firmware: " + text.strip(),
                                      time.monotonic() - started))
            if watch.first_option_is_build and OPTION_FAILED.search(text):
                raise ImageError(f"{watch.board}: the firmware could not boot this build: "
                                 + "; ".join(notes), console.log_path)
        seen = console.line_count
        gave_up = next((t for t in console.tail(4) if FIRMWARE_GAVE_UP.search(t)), None)
        if gave_up is not None:
            said = "; ".join([*notes, gave_up.strip()])
            raise ImageError(f"{watch.board}: the firmware found nothing it could boot in "
                             f"this build and gave up: {said}", console.log_path)
        return None

    try:
        event = console.wait_until(banner, "the guest's banner",
                                   max(0.0, deadline - time.monotonic()), idle=False,
                                   line_of=console.event_line)
    except ConsoleClosed as error:
        raise BootError(f"{watch.board}: the machine went away before the guest's banner"
                        + (f" (the firmware said: {'; '.join(notes)})" if notes else ""),
                        console.log_path) from error
    except ExpectTimeout as error:
        if error.quiet:
            why = f"the console went quiet before the guest's banner ({error.headline})"
        else:
            why = (f"the guest's banner did not appear within {watch.boot_timeout:.0f} s "
                   "of power-on")
        said = f"; the firmware said: {'; '.join(notes)}" if notes else ""
        raise ImageError(f"{watch.board}: {why}{said}", console.log_path) from error
    bus.publish(BootPhase(watch.board, "guest banner", event.time, event.line.strip()))

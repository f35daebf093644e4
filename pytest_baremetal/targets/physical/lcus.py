"""Our driver for LCUS USB-serial relay boards (CH340 + STC MCU), which labgrid lacks.

A command is four bytes: ``A0 <channel> <state> <checksum>``, the checksum being the low
byte of the sum of the first three (``A0 01 01 A2`` closes relay 1, ``A0 01 00 A1`` opens
it). Multi-channel boards also answer the status query ``FF`` with lines such as
``CH1: ON``; single-channel boards answer nothing, so read-back is optional.
Every exchange has a timeout: a relay that does not answer is an error, never a hang.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from typing import Any

import serial

from pytest_baremetal.errors import BaremetalError, RelayError

HEADER = 0xA0
QUERY = b"\xff"
_STATUS = re.compile(rb"CH\s*(\d+)\s*:\s*(ON|OFF)", re.IGNORECASE)


def frame(channel: int, on: bool) -> bytes:
    if not 1 <= channel <= 255:
        raise ValueError(f"LCUS channel {channel} out of range")
    state = 1 if on else 0
    return bytes([HEADER, channel, state, (HEADER + channel + state) & 0xFF])


def parse_frame(data: bytes) -> tuple[int, bool]:
    """(channel, on) of a 4-byte command; ValueError for a bad header, state or checksum."""
    if len(data) != 4 or data[0] != HEADER:
        raise ValueError(f"not an LCUS frame: {data.hex(' ')}")
    if data[2] not in (0, 1):
        raise ValueError(f"bad LCUS state byte {data[2]:#04x} in {data.hex(' ')}")
    if (data[0] + data[1] + data[2]) & 0xFF != data[3]:
        raise ValueError(f"bad LCUS checksum in {data.hex(' ')}: expected "
                         f"{(data[0] + data[1] + data[2]) & 0xFF:#04x}")
    return data[1], data[2] == 1


def parse_status(text: bytes) -> dict[int, bool]:
    return {int(ch): state.upper() == b"ON" for ch, state in _STATUS.findall(text)}


class LcusRelay:
    """One channel of an LCUS board. ``resolve()`` gives the port (path or pyserial URL)."""

    def __init__(self, resolve: Callable[[], str], channel: int = 1, *, baud: int = 9600,
                 query: bool = False, timeout: float = 2.0) -> None:
        self._resolve = resolve
        self.channel = channel
        self.baud = baud
        self.query = query
        self.timeout = timeout
        self._port: Any = None
        self.port_name = ""

    def _open(self) -> Any:
        if self._port is not None:
            return self._port
        try:
            self.port_name = self._resolve()
        except BaremetalError as error:
            raise RelayError(f"LCUS relay not found: {error}") from error
        try:
            kwargs: dict[str, Any] = {"baudrate": self.baud, "timeout": self.timeout}
            if "://" not in self.port_name:  # pyserial's rfc2217 refuses write_timeout
                kwargs.update(exclusive=True, write_timeout=self.timeout)
            self._port = serial.serial_for_url(self.port_name, **kwargs)
        except (serial.SerialException, OSError, ValueError) as error:
            raise RelayError(f"LCUS relay on {self.port_name}: cannot open the port: "
                             f"{error}") from error
        return self._port

    def _exchange(self, data: bytes) -> None:
        port = self._open()
        try:
            port.reset_input_buffer()
            port.write(data)
            port.flush()
        except (serial.SerialException, OSError) as error:
            self.close()
            raise RelayError(f"LCUS relay on {self.port_name} did not take the command "
                             f"{data.hex(' ')} within {self.timeout:.1f} s: {error}") from error

    def set(self, on: bool) -> None:
        """Switches the channel; with ``query`` reads the state back and checks it."""
        self._exchange(frame(self.channel, on))
        if self.query:
            state = self.get()
            if state is not on:
                raise RelayError(f"LCUS relay on {self.port_name} channel {self.channel}: "
                                 f"switched {'on' if on else 'off'} but reads back "
                                 f"{'on' if state else 'off'}")

    def get(self) -> bool | None:
        """The channel's state, or None when this board cannot be asked."""
        if not self.query:
            return None
        self._exchange(QUERY)
        port = self._port
        deadline = time.monotonic() + self.timeout
        seen = b""
        while time.monotonic() < deadline:
            try:
                port.timeout = max(0.0, min(0.1, deadline - time.monotonic()))
                seen += bytes(port.read(256))
            except (serial.SerialException, OSError) as error:
                self.close()
                raise RelayError(f"LCUS relay on {self.port_name}: read failed: "
                                 f"{error}") from error
            states = parse_status(seen)
            if self.channel in states and seen.rstrip(b" ").endswith(b"\n"):
                return states[self.channel]
        shown = seen[-60:].decode("ascii", "replace") or "nothing"
        raise RelayError(f"LCUS relay on {self.port_name} did not answer the status query "
                         f"for channel {self.channel} within {self.timeout:.1f} s (got "
                         f"{shown!r}); check the port, its baud rate ({self.baud}) and the "
                         "relay board's power, or set query: false for boards without it")

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(Exception):
                port.close()


def main(argv: list[str] | None = None) -> int:
    """Switch or read one channel by hand, or from a lab tool's power command (labgrid's
    ``ExternalPowerDriver``): ``python -m pytest_baremetal.targets.physical.lcus PORT
    CHANNEL on|off|status [--query] [--baud N]``. Exits 0 when done (status: 0 on, 1 off),
    2 with the reason otherwise."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m pytest_baremetal.targets.physical.lcus",
                                     description=main.__doc__)
    parser.add_argument("port", help="the relay's serial port (a path or a pyserial URL)")
    parser.add_argument("channel", type=int)
    parser.add_argument("action", choices=("on", "off", "status"))
    parser.add_argument("--query", action="store_true",
                        help="read the state back after switching (multi-channel boards)")
    parser.add_argument("--baud", type=int, default=9600)
    args = parser.parse_args(argv)
    query = args.query or args.action == "status"
    relay = LcusRelay(lambda: str(args.port), args.channel, baud=args.baud, query=query)
    try:
        if args.action == "status":
            return 0 if relay.get() else 1
        relay.set(args.action == "on")
        return 0
    except (RelayError, ValueError) as error:
        print(f"lcus: {error}", file=sys.stderr)
        return 2
    finally:
        relay.close()


if __name__ == "__main__":
    raise SystemExit(main())

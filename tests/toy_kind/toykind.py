"""A board kind from outside pytest-baremetal: the console is a scripted transcript.

One module plus one registration line (the entry point in ``entry_points.txt``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_baremetal.boards import Board
from pytest_baremetal.bus import BootPhase, ConsoleOpened
from pytest_baremetal.console import Console
from pytest_baremetal.dut import BootDescription, BootInfo, Dut
from pytest_baremetal.errors import ConsoleClosed, PowerError
from pytest_baremetal.targets import BootRequest, TargetOptions, bootwatch
from pytest_baremetal.validate import Where, integer, known_keys, mapping

TRANSCRIPT = (b"BdsDxe: loading Boot0001 \"toy\"\r\n"
              b"[boot] name=toy-guest version=1 build=t1 platform=toy fw_vendor=toy "
              b"fw_revision=0x1 uefi=2.70\r\n"
              b"[done] status=ok\r\n")


@dataclass(frozen=True)
class ToySpec:
    lines_per_read: int = 1
    power_faults: int = 0  # how many boots fail with a power fault before one works


class Transcript:
    def __init__(self, data: bytes, step: int) -> None:
        self.lines = data.splitlines(keepends=True)
        self.step = step

    def read(self, max_bytes: int, timeout: float) -> bytes:
        if not self.lines:
            raise ConsoleClosed("the toy powered off")
        time.sleep(0.05)
        chunk, self.lines = self.lines[:self.step], self.lines[self.step:]
        return b"".join(chunk)

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class ToyPower:
    senses_off = True

    def wait_off(self, timeout: float) -> int | None:
        return 0

    def off(self) -> None: ...

    def is_on(self) -> bool:
        return False


class ToyTarget:
    boots = 0

    def __init__(self, board: Board[ToySpec]) -> None:
        self.board = board

    def boot(self, request: BootRequest) -> Dut:
        ToyTarget.boots += 1
        if ToyTarget.boots <= self.board.spec.power_faults:
            raise PowerError(f"toy relay stuck (boot {ToyTarget.boots})")
        console = Console(Transcript(TRANSCRIPT, self.board.spec.lines_per_read),
                          request.log_dir, request.profile, name=self.board.name).start()
        request.bus.publish(ConsoleOpened(self.board.name, console))
        request.bus.publish(BootPhase(self.board.name, "power on (toy)", 0.0))
        watch = bootwatch.Watch(self.board.name, 10.0, 10.0)
        bootwatch.first_output(console, watch, request.bus)
        bootwatch.guest_banner(console, request.profile, watch, request.bus, time.monotonic())
        info = BootInfo(self.board.name, "toy", "toy", log_dir=request.log_dir,
                        description=BootDescription("toy boot", "scripted transcript\n"))
        return Dut(self.board, request.config, console, ToyPower(), request.profile, info,
                   request.build, bus=request.bus)

    def describe(self) -> str:
        return "toy"

    def facts(self) -> dict[str, str]:
        return {"toy": "1"}

    def close(self) -> None: ...


class ToyKind:
    name = "toy"
    keys = ("toy",)
    required = ("toy",)

    def parse(self, data: Mapping[str, Any], where: Where, board_name: str) -> ToySpec:
        section = mapping(data["toy"], where, "toy", "a mapping")
        known_keys(section, ("lines_per_read", "power_faults"), where, "toy.")
        return ToySpec(integer(section.get("lines_per_read", 1), where, "toy.lines_per_read",
                               1, 10),
                       integer(section.get("power_faults", 0), where, "toy.power_faults",
                               0, 10))

    def source(self, spec: ToySpec) -> dict[str, Any]:
        return {"toy": {"lines_per_read": spec.lines_per_read}}

    def summary(self, spec: ToySpec) -> str:
        return "toy"

    def unreachable(self, board: Board[ToySpec]) -> str | None:
        return None

    def target(self, board: Board[ToySpec], options: TargetOptions) -> ToyTarget:
        return ToyTarget(board)


KIND = ToyKind()

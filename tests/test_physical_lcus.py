"""The LCUS relay driver: frames, checksums, read-back, and a silent relay (no hang)."""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_baremetal.targets.physical.lcus import LcusRelay, RelayError, frame, parse_frame
from pytest_baremetal.targets.physical.lcus import main as lcus_main

pytest.importorskip("serial")


def test_frames_match_the_lcus_documentation() -> None:
    assert frame(1, True) == bytes.fromhex("a0 01 01 a2")
    assert frame(1, False) == bytes.fromhex("a0 01 00 a1")
    assert frame(4, True) == bytes.fromhex("a0 04 01 a5")
    assert parse_frame(bytes.fromhex("a0 02 01 a3")) == (2, True)


@pytest.mark.parametrize("data, words", [
    ("a0 01 01 a3", "checksum"), ("a1 01 01 a3", "not an LCUS frame"),
    ("a0 01 02 a3", "state byte"), ("a0 01 01", "not an LCUS frame"),
])
def test_bad_frames_are_rejected(data: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_frame(bytes.fromhex(data))


class FakeBoard:
    """An LCUS board on a pty: records frames, optionally answers FF with CHn: lines."""

    def __init__(self, link: Path, answer: bool) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        link.symlink_to(os.ttyname(self.slave))
        self.path = str(link)
        self.answer = answer
        self.frames: list[bytes] = []
        self.state = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        buf = b""
        os.set_blocking(self.master, False)
        while not self.stop.is_set():
            try:
                buf += os.read(self.master, 64)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            except OSError:
                return
            while buf:
                if buf[0] == 0xFF:
                    buf = buf[1:]
                    if self.answer:
                        os.write(self.master, f"CH1: {'ON' if self.state else 'OFF'}\r\n"
                                 "CH2: OFF\r\n".encode())
                elif len(buf) >= 4:
                    self.frames.append(buf[:4])
                    self.state = parse_frame(buf[:4])[1]
                    buf = buf[4:]
                else:
                    break

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def relay_board(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FakeBoard]:
    fake = FakeBoard(tmp_path / "relay", answer=getattr(request, "param", True))
    yield fake
    fake.close()


def test_switch_and_read_back(relay_board: FakeBoard) -> None:
    relay = LcusRelay(lambda: relay_board.path, 1, query=True, timeout=2)
    relay.set(True)
    assert relay.get() is True
    relay.set(False)
    assert relay.get() is False
    relay.close()
    assert relay_board.frames == [frame(1, True), frame(1, False)]


@pytest.mark.parametrize("relay_board", [False], indirect=True)
def test_silent_relay_is_a_clear_error_not_a_hang(relay_board: FakeBoard) -> None:
    relay = LcusRelay(lambda: relay_board.path, 1, query=True, timeout=1.0)
    start = time.monotonic()
    with pytest.raises(RelayError) as info:
        relay.set(True)
    assert time.monotonic() - start < 3.0
    assert "did not answer the status query for channel 1 within 1.0 s" in str(info.value)
    assert relay_board.path in str(info.value)
    relay.close()


@pytest.mark.parametrize("relay_board", [False], indirect=True)
def test_board_without_query_is_trusted(relay_board: FakeBoard) -> None:
    relay = LcusRelay(lambda: relay_board.path, 1, query=False)
    relay.set(True)
    assert relay.get() is None
    relay.close()
    time.sleep(0.1)
    assert relay_board.frames == [frame(1, True)]


def test_missing_port_names_it(tmp_path: Path) -> None:
    relay = LcusRelay(lambda: str(tmp_path / "ttyUSB9"), 1)
    with pytest.raises(RelayError, match=r"ttyUSB9: cannot open the port"):
        relay.set(False)


def test_command_line_switches_reads_and_names_errors(
        relay_board: FakeBoard, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The command line a lab tool (labgrid's ExternalPowerDriver) calls to switch a relay."""
    assert lcus_main([relay_board.path, "1", "on", "--query"]) == 0
    assert lcus_main([relay_board.path, "1", "status"]) == 0  # 0: on
    assert lcus_main([relay_board.path, "1", "off"]) == 0
    assert lcus_main([relay_board.path, "1", "status"]) == 1  # 1: off
    assert relay_board.frames == [frame(1, True), frame(1, False)]
    assert lcus_main([str(tmp_path / "ttyUSB9"), "1", "on"]) == 2
    assert "ttyUSB9: cannot open the port" in capsys.readouterr().err
    assert lcus_main([relay_board.path, "0", "on"]) == 2  # channel out of range
    assert "channel 0 out of range" in capsys.readouterr().err

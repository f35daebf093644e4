"""The raw timestamped log round-trips exactly; the cleaned view sits beside it."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_baremetal.console.log import ConsoleLog, read_raw, read_records


def test_record_format(tmp_path: Path) -> None:
    raw = tmp_path / "qemu.console.log"
    with ConsoleLog(raw, t0=100.0) as log:
        assert log.append(b"\x1b[2Jfirst\r\r\nsec", 101.5) == "first\nsec"
        assert log.append(b"ond\r\nthird", 102.25) == "ond\nthird"
        log.append(b"\n", 103.0)
        log.finish()
    assert raw.read_bytes() == (
        b"00001.500000 \x1b[2Jfirst\r\r\n"
        b"00001.500000 second\r\n"  # a split line keeps the time of its first byte
        b"00002.250000 third\n"
    )
    assert (tmp_path / "qemu.console.txt").read_text() == "first\nsecond\nthird\n"
    assert list(read_records(raw)) == [
        (1.5, b"\x1b[2Jfirst\r\r\n"),
        (1.5, b"second\r\n"),
        (2.25, b"third\n"),
    ]


def test_unterminated_last_line_and_early_time(tmp_path: Path) -> None:
    raw = tmp_path / "a.console.log"
    with ConsoleLog(raw, t0=10.0) as log:
        log.append(b"no newline", 9.0)  # a clock step backwards never gives a negative stamp
    assert raw.read_bytes() == b"00000.000000 no newline"
    assert read_raw(raw) == b"no newline"


def test_corrupt_log_is_reported(tmp_path: Path) -> None:
    raw = tmp_path / "bad.console.log"
    raw.write_bytes(b"00000.100000 ok\nnot a record\n")
    with pytest.raises(ValueError, match=re.escape(str(raw))):
        read_raw(raw)


@given(
    st.lists(
        st.tuples(st.binary(max_size=64), st.floats(min_value=0, max_value=50000)), max_size=40
    )
)
def test_random_chunks_round_trip(chunks: list[tuple[bytes, float]]) -> None:
    times = sorted(t for _, t in chunks)  # a monotonic clock
    chunks = [(data, t) for (data, _), t in zip(chunks, times, strict=True)]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "x.console.log"
        with ConsoleLog(raw, t0=0.0) as log:
            for data, t in chunks:
                log.append(data, t)
        stream = b"".join(data for data, _ in chunks)
        assert read_raw(raw) == stream
        records = list(read_records(raw))
        parts = stream.split(b"\n")
        lines = [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        assert [line for _, line in records] == lines
        # each record carries the time of the chunk holding its first byte (to the µs)
        starts: list[tuple[int, float]] = []
        pos = 0
        for data, t in chunks:
            starts.extend((pos + i, t) for i in range(len(data)))
            pos += len(data)
        first_byte_time = dict(starts)
        offset = 0
        for stamp, line in records:
            assert stamp == pytest.approx(first_byte_time[offset], abs=1e-6)
            offset += len(line)

"""A damaged, truncated-by-hand or read-only history file ends in a HistoryError that names
the file and what to do, never a raw sqlite3 error; a NaN sample is refused clearly."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_baremetal.history import HistoryError, RunContext, Sample
from pytest_baremetal.history import store as store_mod
from pytest_baremetal.history.store import SqliteStore

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def ctx(i: int) -> RunContext:
    return RunContext(board="qemu-tcg", accelerator="tcg", cpu_model="Skylake-Client",
                      model_digest="sha256:abc", build_id=f"b{i}", git_commit="deadbeef",
                      qemu_version="7.2.0", host="h", session="", started_at=T0 + timedelta(i))


def filled(path: Path, runs: int = 300) -> None:
    with SqliteStore(path) as store:
        for i in range(runs):
            store.record_run(ctx(i), [Sample("decode_tok_s", 10.0 + i, r) for r in range(4)],
                             "passed")
        store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_damage_found_after_opening_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    filled(path)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 8 * page
    for offset in range(4 * page, len(data) - page, page):  # every page but the first ones
        data[offset:offset + page] = b"\xa5" * page
    path.write_bytes(bytes(data))
    store = SqliteStore(path)  # the schema pages are intact: it opens...
    try:
        with pytest.raises(HistoryError) as info:
            store.samples([r.id for r in store.runs()])  # ...and meets the damage here
    finally:
        store.close()
    message = str(info.value)
    assert str(path) in message and "damaged" in message and "move it away" in message


def test_a_dropped_table_at_open_and_after_open(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    filled(path, runs=2)
    with sqlite3.connect(path) as raw:
        raw.execute("DROP TABLE samples")
    with pytest.raises(HistoryError, match=rf"{path}.* has no table samples.*move the file"):
        SqliteStore(path)

    other = tmp_path / "other.sqlite"
    filled(other, runs=2)
    with SqliteStore(other) as store:
        with sqlite3.connect(other) as raw:
            raw.execute("DROP TABLE samples")
        with pytest.raises(HistoryError, match=rf"cannot use history store {other}: no such "
                                               r"table: samples; a table is missing"):
            store.add_samples(1, [Sample("decode_tok_s", 1.0, 9)])


def test_a_read_only_file_fails_at_open_with_the_fix(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-only as SQLite itself sees it (this suite runs as root, whom chmod does not stop):
    the file opened with mode=ro."""
    path = tmp_path / "history.sqlite"
    filled(path, runs=1)
    real_connect = sqlite3.connect

    def read_only(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        return real_connect(f"file:{database}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(store_mod.sqlite3, "connect", read_only)
    with pytest.raises(HistoryError) as info:
        SqliteStore(path)
    message = str(info.value)
    assert f"history store {path}: attempt to write a readonly database" in message
    assert "writable" in message and "--bm-history" in message


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_sample_that_is_not_a_number_is_refused_and_nothing_stored(tmp_path: Path,
                                                                     value: float) -> None:
    with SqliteStore(tmp_path / "h.sqlite") as store:
        with pytest.raises(HistoryError, match=r"h\.sqlite: sample decode_tok_s #2 = .* is "
                                               r"not a finite number"):
            store.record_run(ctx(0), [Sample("decode_tok_s", 12.0, 1),
                                      Sample("decode_tok_s", value, 2)])
        assert store.runs() == []  # one transaction: the run did not appear either
        run = store.record_run(ctx(1), [Sample("decode_tok_s", 12.0, 1)])
        with pytest.raises(HistoryError, match="not a finite number"):
            store.add_samples(run, [Sample("decode_tok_s", value, 2)])
        assert len(store.samples([run])[run]) == 1

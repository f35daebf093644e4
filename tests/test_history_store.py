"""History stores: round trips, schema versions, concurrent writers, kills, PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pytest_baremetal.history import HistoryError, RunContext, Sample, open_store
from pytest_baremetal.history.store import (
    SCHEMA_VERSION,
    PostgresStore,
    SqliteStore,
    _redact,
)

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def ctx(i: int = 0, **kw: object) -> RunContext:
    fields: dict[str, object] = {
        "board": "qemu-tcg",
        "accelerator": "tcg",
        "cpu_model": "Skylake-Client",
        "model_digest": "sha256:abc",
        "build_id": f"b{i}",
        "git_commit": "deadbeef",
        "qemu_version": "7.2.0",
        "host": "h",
        "session": "",
        "started_at": T0 + timedelta(hours=i),
    }
    fields.update(kw)
    return RunContext(**fields)  # type: ignore[arg-type]


def samples(values: list[float], metric: str = "decode_tok_s") -> list[Sample]:
    return [Sample(metric, v, i + 1) for i, v in enumerate(values)]


# ---------------------------------------------------------------- PostgreSQL server


def _pg_bindir() -> Path | None:
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "initdb").exists() and (cand / "pg_ctl").exists():
            return cand
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1, stopped when the module ends."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries absent (apt-get install -y postgresql)")
    pytest.importorskip("psycopg", reason='psycopg 3 absent (pip install "psycopg[binary]")')
    tmp = Path(tempfile.mkdtemp(prefix="bm-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(tmp, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = tmp / "data", _free_port()
    started = False
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "bm",
             "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = f"-h 127.0.0.1 -p {port} -k {tmp} -F"
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"),
             "-o", options, "-w", "-t", "60", "start"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        started = True
        yield f"postgresql://bm@127.0.0.1:{port}/postgres"
    finally:
        if started:
            subprocess.run(
                [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                 "stop"],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the module's server."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "h.sqlite")
    return str(request.getfixturevalue("postgres_url"))


# ------------------------------------------------------------------ both back ends


def test_round_trip_keeps_context_samples_and_order(store_url: str) -> None:
    with open_store(store_url) as store:
        first = store.record_run(ctx(0, fallback_reason="kvm: failed to set MSR 0x10a"),
                                 samples([25.0, 25.5]))  # fmt: skip
        second = store.record_run(ctx(1, session="s1"), samples([26.0, 26.5, 27.0]), "passed")
        store.add_samples(second, samples([100.0], "prefill_tok_s"))
        store.set_status(first, "failed")
        runs = store.runs(board="qemu-tcg")
        assert [r.id for r in runs] == [second, first]  # newest first
        assert runs[1].status == "failed"
        assert runs[1].context == ctx(0, fallback_reason="kvm: failed to set MSR 0x10a")
        assert runs[0].context.started_at == T0 + timedelta(hours=1)
        got = store.samples([first, second])
        assert [s.value for s in got[first]] == [25.0, 25.5]
        assert {s.metric for s in got[second]} == {"decode_tok_s", "prefill_tok_s"}
        only = store.samples([second], "prefill_tok_s")[second]
        assert only == [Sample("prefill_tok_s", 100.0, 1)]


def test_filters_by_key_status_release_and_ids(store_url: str) -> None:
    with open_store(store_url) as store:
        a = store.record_run(ctx(0), samples([1.0]), "passed")
        b = store.record_run(ctx(1, accelerator="kvm"), samples([1.0]), "passed")
        c = store.record_run(ctx(2, fallback_reason="whpx failed"), samples([1.0]), "failed")
        store.set_release([a], "v1.0")
        store.set_accepted([c])
        assert [r.id for r in store.runs(key=ctx(0).key)] == [a]
        assert [r.id for r in store.runs(key=ctx(0, fallback_reason="x").key)] == [c]
        assert [r.id for r in store.runs(statuses=("passed",))] == [b, a]
        assert [r.id for r in store.runs(release="v1.0")] == [a]
        assert [r.id for r in store.runs(ids=[a, c])] == [c, a]
        assert store.runs(ids=[c])[0].accepted
        assert [r.id for r in store.runs(limit=1)] == [c]


def test_a_run_and_its_samples_are_written_together(store_url: str) -> None:
    with open_store(store_url) as store:
        bad = [Sample("decode_tok_s", 1.0, 1), Sample("decode_tok_s", 2.0, 1)]  # same key
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            store.record_run(ctx(0), bad)
        assert store.runs() == []
        with pytest.raises(HistoryError, match="running, passed, failed"):
            store.record_run(ctx(0), [], "ok")


def _concurrent_writer(url: str, worker: int, runs: int) -> None:
    with open_store(url) as store:
        for i in range(runs):
            store.record_run(ctx(i, host=f"w{worker}"), samples([float(worker), float(i)]))


def test_several_processes_write_at_once(store_url: str) -> None:
    mp = multiprocessing.get_context("spawn")
    procs = [mp.Process(target=_concurrent_writer, args=(store_url, w, 25)) for w in range(4)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    with open_store(store_url) as store:
        runs = store.runs()
        assert len(runs) == 100
        assert sorted({r.context.host for r in runs}) == ["w0", "w1", "w2", "w3"]
        assert all(len(v) == 2 for v in store.samples([r.id for r in runs]).values())


# ------------------------------------------------------------------ SQLite only

KILLED_WRITER = """
import sys
from datetime import datetime, timezone
from pytest_baremetal.history import RunContext, Sample, open_store
store = open_store(sys.argv[1])
for i in range(100000):
    c = RunContext(board="b", accelerator="tcg", cpu_model="m", model_digest="d",
                   started_at=datetime.now(timezone.utc))
    run_id = store.record_run(c, [Sample("decode_tok_s", 20.0 + r, r) for r in range(5)])
    print(run_id, flush=True)
"""


def test_a_killed_writer_loses_nothing_it_committed(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    committed: list[int] = []
    try:
        assert proc.stdout is not None
        while len(committed) < 30:
            line = proc.stdout.readline()
            assert line, "the writer stopped early"
            committed.append(int(line))
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    with open_store(path) as store:
        ids = {r.id for r in store.runs()}
        assert set(committed) <= ids
        assert all(len(v) == 5 for v in store.samples(sorted(ids)).values())


def test_wal_mode_and_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store(None) as store:
        assert isinstance(store, SqliteStore)
        assert store.path == Path("reports/history.sqlite")
    conn = sqlite3.connect(tmp_path / "reports" / "history.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        assert store.location == str(tmp_path / "x.db")


def test_a_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError, match=r"schema version 2.*newer pytest-baremetal"):
        open_store(path)


def test_unknown_scheme_and_redaction() -> None:
    with pytest.raises(HistoryError, match="unknown scheme"):
        open_store("mysql://x/y")
    assert _redact("postgresql://bm:secret@db/h") == "postgresql://bm:***@db/h"
    assert _redact("postgresql://db/h") == "postgresql://db/h"


def test_postgres_without_psycopg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(HistoryError, match=r"pip install \"pytest-baremetal\[postgres\]\""):
        PostgresStore("postgresql://bm@127.0.0.1:1/x")

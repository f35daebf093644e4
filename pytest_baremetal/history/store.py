"""History stores: where runs and their samples are kept (SQLite file or PostgreSQL).

Every write is one short transaction: a run and its samples appear together or not at
all, so an interrupted session loses nothing it had already recorded. SQLite uses WAL
mode, a busy timeout and ``BEGIN IMMEDIATE`` so several pytest-xdist workers can write to
one file at once; PostgreSQL serialises schema creation with an advisory lock.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .context import ComparisonKey, RunContext, Sample
from .errors import HistoryError

SCHEMA_VERSION = 1
DEFAULT_PATH = Path("reports") / "history.sqlite"
STATUSES = ("running", "passed", "failed")
_PG_LOCK_ID = 0x62_6D_68_69  # "bmhi": serialises schema creation across clients

_RUN_COLUMNS = (
    "id, started_at, session, board, accelerator, fallback_reason, cpu_model, build_id, "
    "model_digest, git_commit, qemu_version, host, status, accepted, release_name"
)


def _schema(id_column: str) -> list[str]:
    return [
        f"""CREATE TABLE runs (
            id {id_column},
            started_at TEXT NOT NULL,
            session TEXT NOT NULL DEFAULT '',
            board TEXT NOT NULL,
            accelerator TEXT NOT NULL,
            fallback_reason TEXT,
            cpu_model TEXT NOT NULL,
            build_id TEXT NOT NULL,
            model_digest TEXT NOT NULL,
            git_commit TEXT NOT NULL,
            qemu_version TEXT NOT NULL,
            host TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'passed', 'failed')),
            accepted INTEGER NOT NULL DEFAULT 0,
            release_name TEXT)""",
        "CREATE INDEX runs_by_board ON runs (board, started_at)",
        "CREATE INDEX runs_by_release ON runs (release_name)",
        """CREATE TABLE samples (
            run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            metric TEXT NOT NULL,
            value DOUBLE PRECISION NOT NULL,
            repeat_index INTEGER NOT NULL,
            PRIMARY KEY (run_id, metric, repeat_index))""",
    ]


@dataclass(frozen=True)
class RunRecord:
    """A stored run: its id, context, outcome and baseline marks."""

    id: int
    context: RunContext
    status: str
    accepted: bool = False
    release_name: str | None = None

    @property
    def key(self) -> ComparisonKey:
        return self.context.key


class HistoryStore(Protocol):
    """What the plugin and the history command need from a store."""

    location: str

    def record_run(
        self, context: RunContext, samples: Sequence[Sample], status: str = "running"
    ) -> int: ...

    def add_samples(self, run_id: int, samples: Sequence[Sample]) -> None: ...

    def set_status(self, run_id: int, status: str) -> None: ...

    def set_release(self, run_ids: Sequence[int], name: str) -> None: ...

    def set_accepted(self, run_ids: Sequence[int]) -> None: ...

    def runs(
        self,
        *,
        board: str | None = None,
        key: ComparisonKey | None = None,
        statuses: Sequence[str] | None = None,
        release: str | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]: ...

    def samples(
        self, run_ids: Sequence[int], metric: str | None = None
    ) -> dict[int, list[Sample]]: ...

    def close(self) -> None: ...


class _Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise HistoryError(f"run status {status!r} is not one of {', '.join(STATUSES)}")


def _run_from_row(row: Sequence[Any]) -> RunRecord:
    context = RunContext(
        started_at=datetime.fromisoformat(row[1]),
        session=row[2],
        board=row[3],
        accelerator=row[4],
        fallback_reason=row[5],
        cpu_model=row[6],
        build_id=row[7],
        model_digest=row[8],
        git_commit=row[9],
        qemu_version=row[10],
        host=row[11],
    )
    return RunRecord(int(row[0]), context, row[12], bool(row[13]), row[14])


class _SqlStore:
    """SQL shared by both back ends; placeholders are written ``?``."""

    location: str
    _placeholder = "?"

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        raise NotImplementedError
        yield

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self._placeholder)

    def _run(self, cur: _Cursor, sql: str, params: Sequence[Any] = ()) -> None:
        cur.execute(self._sql(sql), tuple(params))

    def _create_schema(self, cur: _Cursor, id_column: str) -> None:
        """Check the schema version and create the tables on first use (in a transaction)."""
        self._run(cur, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        self._run(cur, "SELECT MAX(version) FROM schema_version")
        found = cur.fetchone()[0]
        if found is None:
            for statement in _schema(id_column):
                self._run(cur, statement)
            self._run(cur, "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif int(found) > SCHEMA_VERSION:
            raise HistoryError(
                f"history store {self.location} has schema version {found}, written by a "
                f"newer pytest-baremetal; this one reads up to version {SCHEMA_VERSION}: "
                "upgrade pytest-baremetal or use another store"
            )

    def _insert_samples(self, cur: _Cursor, run_id: int, samples: Sequence[Sample]) -> None:
        for s in samples:
            if not math.isfinite(float(s.value)):
                raise HistoryError(
                    f"history store {self.location}: sample {s.metric} #{s.repeat} = "
                    f"{s.value!r} is not a finite number; nothing of this write was stored "
                    "(the guest printed a value that is not a measurement)")
            self._run(
                cur,
                "INSERT INTO samples (run_id, metric, value, repeat_index) VALUES (?, ?, ?, ?)",
                (run_id, s.metric, float(s.value), int(s.repeat)),
            )

    def _insert_run(self, cur: _Cursor, c: RunContext, status: str) -> int:
        raise NotImplementedError

    def record_run(
        self, context: RunContext, samples: Sequence[Sample], status: str = "running"
    ) -> int:
        """Store a run and its samples in one transaction; return the run's id."""
        _check_status(status)
        with self._transaction() as cur:
            run_id = self._insert_run(cur, context, status)
            self._insert_samples(cur, run_id, samples)
        return run_id

    def add_samples(self, run_id: int, samples: Sequence[Sample]) -> None:
        """Add samples to a stored run (e.g. one REPL prompt at a time)."""
        with self._transaction() as cur:
            self._insert_samples(cur, run_id, samples)

    def set_status(self, run_id: int, status: str) -> None:
        """Record the outcome of a run: ``passed`` or ``failed``."""
        _check_status(status)
        with self._transaction() as cur:
            self._run(cur, "UPDATE runs SET status = ? WHERE id = ?", (status, run_id))

    def set_release(self, run_ids: Sequence[int], name: str) -> None:
        """Name these runs as the baseline of release ``name``."""
        if not name:
            raise HistoryError("a release name must not be empty")
        with self._transaction() as cur:
            for run_id in run_ids:
                self._run(cur, "UPDATE runs SET release_name = ? WHERE id = ?", (name, run_id))

    def set_accepted(self, run_ids: Sequence[int]) -> None:
        """Accept these runs as the new baseline: older runs are no longer compared with."""
        with self._transaction() as cur:
            for run_id in run_ids:
                self._run(cur, "UPDATE runs SET accepted = 1 WHERE id = ?", (run_id,))

    def runs(
        self,
        *,
        board: str | None = None,
        key: ComparisonKey | None = None,
        statuses: Sequence[str] | None = None,
        release: str | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Stored runs matching every given filter, newest first."""
        where: list[str] = []
        params: list[Any] = []
        if board is not None:
            where.append("board = ?")
            params.append(board)
        if key is not None:
            where.append("board = ? AND accelerator = ? AND cpu_model = ? AND model_digest = ?")
            params += [key.board, key.accelerator, key.cpu_model, key.model_digest]
            where.append(
                "fallback_reason IS NOT NULL" if key.fallback else "fallback_reason IS NULL"
            )
        if statuses is not None:
            where.append(f"status IN ({', '.join('?' for _ in statuses) or 'NULL'})")
            params += list(statuses)
        if release is not None:
            where.append("release_name = ?")
            params.append(release)
        if ids is not None:
            where.append(f"id IN ({', '.join('?' for _ in ids) or 'NULL'})")
            params += list(ids)
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        with self._transaction() as cur:
            self._run(cur, sql, params)
            return [_run_from_row(row) for row in cur.fetchall()]

    def samples(self, run_ids: Sequence[int], metric: str | None = None) -> dict[int, list[Sample]]:
        """The samples of these runs by run id, in repeat order (optionally one metric)."""
        out: dict[int, list[Sample]] = {int(i): [] for i in run_ids}
        if not out:
            return out
        sql = (
            "SELECT run_id, metric, value, repeat_index FROM samples WHERE run_id IN "
            f"({', '.join('?' for _ in out)})"
        )
        params: list[Any] = list(out)
        if metric is not None:
            sql += " AND metric = ?"
            params.append(metric)
        sql += " ORDER BY run_id, metric, repeat_index"
        with self._transaction() as cur:
            self._run(cur, sql, params)
            for run_id, name, value, repeat in cur.fetchall():
                out[int(run_id)].append(Sample(name, float(value), int(repeat)))
        return out

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_values(c: RunContext, status: str) -> tuple[Any, ...]:
    return (
        c.started_at.isoformat(),
        c.session,
        c.board,
        c.accelerator,
        c.fallback_reason,
        c.cpu_model,
        c.build_id,
        c.model_digest,
        c.git_commit,
        c.qemu_version,
        c.host,
        status,
    )


_INSERT_RUN = (
    "INSERT INTO runs (started_at, session, board, accelerator, fallback_reason, cpu_model, "
    "build_id, model_digest, git_commit, qemu_version, host, status) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class SqliteStore(_SqlStore):
    """A history in one SQLite file (WAL mode, safe with several writer processes)."""

    def __init__(self, path: str | Path, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            with self._transaction() as cur:
                self._create_schema(cur, "INTEGER PRIMARY KEY AUTOINCREMENT")
                self._check_tables(cur)
                # a real write now: a read-only file or folder fails here, not mid-run
                cur.execute("PRAGMA user_version = 1")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise _sqlite_error(self.path, "cannot open", exc) from None
        except HistoryError:
            self._conn.close()
            raise

    def _check_tables(self, cur: _Cursor) -> None:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        missing = sorted({"runs", "samples"} - {row[0] for row in cur.fetchall()})
        if missing:
            raise HistoryError(
                f"history store {self.path} has no table {', '.join(missing)} (dropped, or "
                "not a pytest-baremetal history): move the file away to start a new "
                "history, or point --bm-history at the right file")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        try:
            with self._lock:
                cur = self._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    if self._conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            cur.execute("ROLLBACK")
                    raise
                else:
                    cur.execute("COMMIT")
                finally:
                    cur.close()
        except sqlite3.DatabaseError as exc:  # found after opening: damage, a dropped table
            raise _sqlite_error(self.path, "cannot use", exc) from None

    def _insert_run(self, cur: _Cursor, c: RunContext, status: str) -> int:
        self._run(cur, _INSERT_RUN, _run_values(c, status))
        row_id = getattr(cur, "lastrowid", None)
        if row_id is None:  # pragma: no cover - sqlite3 always sets it after INSERT
            raise HistoryError(f"{self.location}: no id for the inserted run")
        return int(row_id)

    def close(self) -> None:
        self._conn.close()


class PostgresStore(_SqlStore):
    """A history shared by several runners in one PostgreSQL database (psycopg 3)."""

    _placeholder = "%s"

    def __init__(self, url: str, connect_timeout_s: int = 10) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise HistoryError(
                f"history store {url} is PostgreSQL, which needs psycopg 3: "
                'pip install "pytest-baremetal[postgres]"'
            ) from exc
        self.location = _redact(url)
        self._lock = threading.Lock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout_s)
        except psycopg.Error as exc:
            raise HistoryError(f"cannot connect to history store {self.location}: {exc}") from exc
        with self._transaction() as cur:
            self._run(cur, f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})")
            self._create_schema(cur, "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    def _insert_run(self, cur: _Cursor, c: RunContext, status: str) -> int:
        self._run(cur, _INSERT_RUN + " RETURNING id", _run_values(c, status))
        return int(cur.fetchone()[0])

    def close(self) -> None:
        self._conn.close()


def _sqlite_error(path: Path, doing: str, exc: sqlite3.DatabaseError) -> HistoryError:
    """A HistoryError naming the file, what sqlite said, and what to do about it."""
    text = str(exc)
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        fix = (f"make {path} and its folder writable (SQLite writes {path.name}-wal beside "
               "it), or point --bm-history at another file")
    elif "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        fix = (f"the file is damaged: move it away to start a new history (`sqlite3 {path} "
               ".recover` may save its runs), or restore a backup")
    elif "no such table" in lowered or "no such column" in lowered:
        fix = ("a table is missing (dropped, or not a pytest-baremetal history): move the "
               "file away to start a new history")
    elif "locked" in lowered or "busy" in lowered:
        fix = "another process held the file longer than the busy timeout: try again"
    else:
        fix = "check the file, or point --bm-history at another one"
    return HistoryError(f"{doing} history store {path}: {text}; {fix}")


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def open_store(url_or_path: str | Path | None = None) -> SqliteStore | PostgresStore:
    """Open a store: ``postgresql://...`` or ``postgres://...``, ``sqlite:///path``, or a
    plain file path; ``None`` opens ``reports/history.sqlite`` under the working directory.
    """
    if url_or_path is None:
        return SqliteStore(DEFAULT_PATH)
    text = str(url_or_path)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresStore(text)
    if text.startswith("sqlite:///"):
        return SqliteStore(text[len("sqlite:///") :])
    if "://" in text:
        raise HistoryError(
            f"history store {text!r}: unknown scheme; use a file path, sqlite:///path or "
            "postgresql://user@host/db"
        )
    return SqliteStore(Path(text))

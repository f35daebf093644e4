"""The server's request log: one record per request, kept in memory, written as text."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

IN_PROGRESS = "in progress"


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server handled it."""

    at_s: float  # since the server started
    client: str
    method: str
    path: str  # the raw request target
    range: str | None  # the Range header as received
    status: int
    length: int | None  # the Content-Length announced
    sent: int  # body bytes written to the socket
    duration_s: float
    faults: tuple[str, ...] = ()
    outcome: str = "ok"  # ok, refused, cut by fault, client gone: <error>, in progress

    def line(self) -> str:
        return (f"{self.at_s:9.3f}s {self.client} {self.method} {self.path} "
                f"range={self.range or '-'} status={self.status} "
                f"length={'-' if self.length is None else self.length} sent={self.sent} "
                f"duration={self.duration_s:.3f}s faults={','.join(self.faults) or '-'} "
                f"outcome={self.outcome}")


class RequestLog:
    """Thread-safe list of records in the order the requests came; a request still being
    answered (a stall) is listed as ``in progress``."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._records: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> int:
        """Appends a record (e.g. one still in progress); returns its index for update()."""
        with self._lock:
            self._records.append(record)
            self._lock.notify_all()
            return len(self._records) - 1

    def update(self, index: int, record: RequestRecord) -> None:
        with self._lock:
            self._records[index] = record
            self._lock.notify_all()

    def wait(self, count: int, timeout: float = 10.0) -> list[RequestRecord]:
        """The records once at least ``count`` are finished (a response's last byte can
        reach the client before its record is); fewer when the timeout passes."""
        with self._lock:
            self._lock.wait_for(lambda: len(self.finished(self._records)) >= count, timeout)
            return list(self._records)

    @staticmethod
    def finished(records: list[RequestRecord]) -> list[RequestRecord]:
        return [r for r in records if r.outcome != IN_PROGRESS]

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def for_path(self, name: str) -> list[RequestRecord]:
        """Records whose request path is ``/name`` (query ignored)."""
        wanted = "/" + name.lstrip("/")
        return [r for r in self.records if r.path.split("?", 1)[0] == wanted]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def settled_text(self, timeout: float = 2.0) -> str:
        """The text once no request is still being answered, or after ``timeout`` (a stall
        on purpose stays ``in progress``): a report made right after the client got its
        last byte must not catch the server before it logged the status."""
        with self._lock:
            self._lock.wait_for(
                lambda: len(self.finished(self._records)) == len(self._records), timeout)
        return self.text()

    def text(self) -> str:
        records = self.records
        if not records:
            return "(no requests)\n"
        return "".join(r.line() + "\n" for r in records)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text(), encoding="utf-8")
        return path

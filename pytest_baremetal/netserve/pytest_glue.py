"""The ``bm_model_server`` fixture's work: what to serve, and the request log in reports."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_baremetal.bus import Attachment
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.netserve.server import FileServer

if TYPE_CHECKING:
    from pytest_baremetal.boards import Board
    from pytest_baremetal.session import BaremetalSession



def served_folder(files: Mapping[str, Path], scratch: Path) -> Path:
    """The folder holding the build's files under their names (else a staging copy); the
    server is told to serve those names only (a folder may hold ~/.ssh too)."""
    if not files:
        raise ConfigError("bm_model_server: the build under test has no files to serve "
                          "(a ready disk image); use the reference guest or --bm-file")
    parents = {Path(path).resolve().parent for path in files.values()}
    if len(parents) == 1 and all(Path(p).name == name for name, p in files.items()):
        return parents.pop()
    scratch.mkdir(parents=True, exist_ok=True)
    for name, path in files.items():
        target = scratch / name
        target.unlink(missing_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return scratch


@contextmanager
def serve_for_test(item: pytest.Item, session: BaremetalSession,
                   board: Board[Any] | None = None) -> Iterator[FileServer]:
    """Serves the build's files for one test; its log goes to the report and a file."""
    if board is not None and "network" not in board.features:
        pytest.skip(f"board {board.name} has no network (no feature 'network' in its board "
                    "file)")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-120:]
    files = session.build.files
    folder = served_folder(files, session.run_log_dir / "netserve" / safe)
    with FileServer(folder, only=files) as server:  # never the rest of the folder
        log = server.log
        session.bus.publish(Attachment(f"netserve requests ({server.root.name})",
                                       log.settled_text))
        try:
            yield server
        finally:
            server.log.write(session.run_log_dir / "netserve" / f"{safe}.requests.log")

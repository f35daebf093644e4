"""The ``bm_model_server`` fixture's work: what to serve, and the request log in reports."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pytest_baremetal import reporting
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.netserve.server import FileServer

PLUGIN_NAME = "baremetal-netserve"
SERVERS = pytest.StashKey[list[FileServer]]()
ATTACHED = pytest.StashKey[bool]()


def served_folder(files: Mapping[str, Path], scratch: Path) -> Path:
    """The folder holding the build's files under their names (else a staging copy)."""
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
def serve_for_test(item: pytest.Item, session: Any, board: Any = None) -> Iterator[FileServer]:
    """Serves the build's files for one test; its log goes to the report and a file."""
    if board is not None and getattr(board, "network", None) is None:
        pytest.skip(f"board {board.name} has no network (network: none in its board file)")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-120:]
    folder = served_folder(getattr(session.build, "files", {}),
                           session.run_log_dir / "netserve" / safe)
    if not item.config.pluginmanager.has_plugin(PLUGIN_NAME):
        item.config.pluginmanager.register(LogReporter(), PLUGIN_NAME)
    with FileServer(folder) as server:
        item.stash.setdefault(SERVERS, []).append(server)
        try:
            yield server
        finally:
            server.log.write(session.run_log_dir / "netserve" / f"{safe}.requests.log")


class LogReporter:
    """Adds each server's request log to a failed test's report and to Allure."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Any:
        report = yield
        servers = item.stash.get(SERVERS, [])
        if report.failed:
            for server in servers:
                report.sections.append(
                    (f"netserve requests ({server.root})", server.log.text()))
        due = report.when == "call" or report.failed
        if servers and due and not item.stash.get(ATTACHED, False) \
                and reporting.reporter(item.config) is not None:
            item.stash[ATTACHED] = True
            _allure_attach(servers)
        return report


def _allure_attach(servers: list[FileServer]) -> None:
    import allure

    attach: Any = allure.attach
    for server in servers:
        attach(server.log.text(), name=f"netserve requests ({server.root.name})",
               attachment_type=allure.attachment_type.TEXT)

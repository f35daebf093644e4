"""pytest hooks and fixtures. Logic lives in the modules they delegate to."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_baremetal import host_reference, reporting
from pytest_baremetal import settings as settings_mod
from pytest_baremetal.dut import Dut
from pytest_baremetal.errors import BaremetalError
from pytest_baremetal.host_reference import HostReference
from pytest_baremetal.netserve import FileServer, pytest_glue
from pytest_baremetal.perf_tracking import PerfTracker
from pytest_baremetal.selection import config_from_markers, skip_reason
from pytest_baremetal.session import BaremetalSession, worker_id

SESSION_KEY = pytest.StashKey[BaremetalSession]()

MARKERS = (
    "bm_config(**settings): guest configuration this test needs (e.g. prompt, steps, seed).",
    "bm_requires(*features): run only on boards offering these features.",
    "bm_lacks(*features): run only on boards without these features.",
    "bm_needs_events(*kinds): skip when the marker profile lacks these event kinds.",
    "bm_reference_model: needs the reference guest's shipped model.",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings_mod.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        settings = settings_mod.from_config(config)
        session = BaremetalSession(settings, worker_id())
        for name in session.target_names:  # bad targets and board files fail before collection
            session.board(name)
    except BaremetalError as error:
        raise pytest.UsageError(str(error)) from error
    config.stash[SESSION_KEY] = session
    reporting.enable(config)
    # labgrid's own pytest plugin owns --lg-coordinator; remote places read the environment
    coordinator = config.getoption("lg_coordinator", None)
    if coordinator:
        os.environ["LG_COORDINATOR"] = str(coordinator)  # the option beats a stale env value
    from pytest_baremetal.physical import remote  # stdlib only: labgrid is not imported here

    remote.route_notices(config)  # "waiting for place" notices show past output capture


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def _session(config: pytest.Config) -> BaremetalSession:
    return config.stash[SESSION_KEY]


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = _session(config)
    targets = ", ".join(session.settings.targets) or "none (pass --target BOARD)"
    return [f"baremetal: targets {targets}; profile {session.settings.profile or 'reference'}"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "board" not in metafunc.fixturenames:
        return
    session = _session(metafunc.config)
    try:
        names = list(session.target_names)
    except BaremetalError as error:
        raise pytest.UsageError(str(error)) from error
    if not names:
        names = [pytest.param(None, marks=pytest.mark.skip(  # type: ignore[list-item]
            reason="no board selected: pass --target BOARD (e.g. --target qemu-tcg)"))]
    metafunc.parametrize("board", names, indirect=True, scope="session",
                         ids=lambda n: n or "no-target")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = _session(config)
    for item in items:
        try:
            reason = skip_reason(item, session)
        except BaremetalError as error:
            raise pytest.UsageError(f"{item.nodeid}: {error}") from error
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def bm_session(request: pytest.FixtureRequest) -> BaremetalSession:
    """This run's bare-metal state (settings, boards, profile, boots)."""
    return _session(request.config)


@pytest.fixture(scope="session")
def bm_targets(bm_session: BaremetalSession) -> tuple[str, ...]:
    """The names of the boards selected with --target."""
    return bm_session.target_names


@pytest.fixture(scope="session")
def board(request: pytest.FixtureRequest, bm_session: BaremetalSession) -> Any:
    """The parsed board this test runs on (one parametrization per --target)."""
    return bm_session.board(request.param)


@pytest.fixture
def dut(request: pytest.FixtureRequest, board: Any, bm_session: BaremetalSession) -> Iterator[Dut]:
    """The booted build on `board`, shared by every test with the same guest configuration."""
    config = bm_session.guest_config(config_from_markers(request.node), request.node.nodeid)
    if bm_session.settings.dut_scope == "function":
        fresh = bm_session.pool.fresh(board.name, config)
        yield _attach(request, fresh)
        fresh.close()
        return
    yield _attach(request, bm_session.pool.get(board.name, config, request.node.nodeid))


@pytest.fixture
def bm_boot(request: pytest.FixtureRequest, bm_session: BaremetalSession) -> Callable[..., Dut]:
    """Boots (or reuses) another board or configuration: `bm_boot("qemu-tcg", steps=8)`."""

    def boot(board_name: str, **settings: Any) -> Dut:
        if board_name not in bm_session.board_paths:
            raise pytest.UsageError(f"bm_boot: no board named {board_name!r}")
        config = bm_session.guest_config(settings, request.node.nodeid)
        return _attach(request, bm_session.pool.get(board_name, config, request.node.nodeid))

    return boot


def _attach(request: pytest.FixtureRequest, dut: Dut) -> Dut:
    """Records which boot a test used, so reports can link its console log."""
    request.node.user_properties.append(("bm_board", dut.board.name))
    request.node.user_properties.append(("bm_log", str(dut.log_path)))
    request.node.user_properties.append(("bm_accelerator", dut.info.accelerator))
    if dut.info.fallback_reason:
        request.node.user_properties.append(("bm_fallback", dut.info.fallback_reason))
    duts = request.node.stash.setdefault(DUTS_KEY, [])
    duts.append(dut)
    dut.on_metric = lambda m: request.node.user_properties.append((m.name, m.value))
    reporting.on_dut(request.node, dut)
    return dut


DUTS_KEY = pytest.StashKey[list[Dut]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    duts = item.stash.get(DUTS_KEY, [])
    if report.failed and duts:
        session = _session(item.config)
        for dut in duts:
            if session.perf is not None:
                session.perf.mark_failed(dut)
            info = dut.info
            text = [f"board {dut.board.name}, accelerator {info.accelerator}"
                    + (f" (fell back: {info.fallback_reason})" if info.fallback_reason else ""),
                    f"console log: {dut.log_path}", "", dut.tail(30)]
            report.sections.append((f"baremetal console ({dut.board.name})", "\n".join(text)))
    return report


@pytest.fixture
def bm_reference(bm_session: BaremetalSession) -> Callable[[Dut], HostReference]:
    """`bm_reference(dut)`: the host reference for that boot's model, tokenizer and settings."""

    def make(dut: Dut) -> HostReference:
        files = getattr(dut.build, "files", {})
        try:
            return host_reference.for_boot(dut.event("cfg").fields, files)
        except BaremetalError as error:
            pytest.skip(f"no host reference for this build: {error}")

    return make


@pytest.fixture
def bm_model_server(request: pytest.FixtureRequest,
                    bm_session: BaremetalSession) -> Iterator[FileServer]:
    """The build's model folder over HTTP on 127.0.0.1 for this test (see netserve).

    Function scope: the fresh port in its URLs makes every boot that uses them its own,
    so a pooled boot never ran against another test's faults; the log is this test's.
    """
    board = request.getfixturevalue("board") if "board" in request.fixturenames else None
    with pytest_glue.serve_for_test(request.node, bm_session, board) as server:
        yield server


@pytest.fixture(scope="session")
def bm_perf(request: pytest.FixtureRequest,
            bm_session: BaremetalSession) -> Iterator[PerfTracker]:
    """Records tok/s samples in the history store and judges them against the baseline."""
    s = bm_session.settings
    tracker = PerfTracker(s.history or str(s.root / "reports" / "history.sqlite"),
                          s.baseline, s.update_baseline, s.release)
    tracker.attach_trend = reporting.trend_attacher(request.config)
    bm_session.perf = tracker
    yield tracker
    bm_session.perf = None
    tracker.close()

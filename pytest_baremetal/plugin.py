"""pytest hooks and fixtures. Logic lives in the modules they delegate to."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_baremetal import budget, metrics_export, reporting, rootfix, scaffold
from pytest_baremetal import settings as settings_mod
from pytest_baremetal.boards import Board
from pytest_baremetal.bus import Attachment, Message, Metric, Verdict
from pytest_baremetal.dut import Dut
from pytest_baremetal.errors import BaremetalError
from pytest_baremetal.live import LiveLog
from pytest_baremetal.selection import config_from_markers, skip_reason
from pytest_baremetal.session import BaremetalSession, worker_id

if TYPE_CHECKING:
    from pytest_baremetal.host_reference import HostReference
    from pytest_baremetal.netserve import FileServer
    from pytest_baremetal.perf_tracking import PerfTracker

SESSION_KEY = pytest.StashKey[BaremetalSession]()

MARKERS = (
    "bm_config(**settings): guest configuration this test needs (e.g. prompt, steps, seed).",
    "bm_requires(*features): run only on boards offering these features.",
    "bm_lacks(*features): run only on boards without these features.",
    "bm_needs_events(*kinds, **kind_fields): skip when the marker profile lacks these event "
    "kinds, or (kind=[fields]) these fields of an event.",
    "bm_interaction(mode): 'repl' for a test that drives the build's prompt (the profile's "
    "repl_when configuration is applied), 'script' for one that needs the run to end itself.",
    "bm_prefer(**settings): guest configuration applied only when the build takes the key.",
    "bm_reference_model: needs the reference guest's shipped model.",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    settings_mod.add_options(parser)
    metrics_export.add_option(parser)


TARGET_OWNER = pytest.StashKey[str]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> Generator[None, None, None]:
    rootfix.repair(early_config, parser, args)  # `--bm-boards DIR` is not a test path
    result = yield
    owner = settings_mod.add_target_option(parser)  # every plugin has its options by now
    if owner:
        early_config.stash[TARGET_OWNER] = owner
    return result


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    try:
        settings = settings_mod.from_config(config)
        session = BaremetalSession(settings, worker_id())
        for name in session.target_names:  # bad targets and board files fail before collection
            session.board(name)
        session.check_build_options()  # once here, not as one setup ERROR per test
    except BaremetalError as error:
        raise pytest.UsageError(str(error)) from error
    config.stash[SESSION_KEY] = session
    session.bus.subscribe(LiveLog(session.settings.console))
    tracker = CurrentTest()
    config.stash[CURRENT_KEY] = tracker
    config.pluginmanager.register(tracker, "baremetal-current-test")
    session.bus.subscribe(tracker.on_message)
    reporting.enable(config, session.bus)
    metrics_export.enable(config, DUTS_KEY, lambda: session.perf)
    # labgrid's own pytest plugin owns --lg-coordinator; remote places read the environment
    coordinator = config.getoption("lg_coordinator", None)
    if coordinator:
        os.environ["LG_COORDINATOR"] = str(coordinator)  # the option beats a stale env value
    from pytest_baremetal.targets.physical import (
        remote,  # stdlib only: labgrid is not imported here
    )

    remote.route_notices(config)  # "waiting for place" notices show past output capture


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    """No tests for the chosen boards: where the suites are. With -v: the boots and where
    the run's time went (see budget)."""
    session = config.stash.get(SESSION_KEY, None)
    if session is not None and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        for line in scaffold.no_tests_hint(session.settings.targets):
            terminalreporter.write_line(line)
    if session is None or config.get_verbosity() < 1 or not budget.recorded(config):
        return
    terminalreporter.write_sep("-", "baremetal budget")
    reports = [r for rs in terminalreporter.stats.values() for r in rs]
    for line in budget.lines(budget.recorded(config), session.pool.boot_count,
                             budget.phase_seconds(reports)):
        terminalreporter.write_line(line)


def _session(config: pytest.Config) -> BaremetalSession:
    return config.stash[SESSION_KEY]


class CurrentTest:
    """Knows which test is running, and files its metrics and verdicts as JUnit
    properties."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Any:
        self.item = item
        try:
            return (yield)
        finally:
            self.item = None

    def on_message(self, message: Message) -> None:
        if self.item is None:
            return
        if isinstance(message, Metric):
            self.item.user_properties.append((message.name, message.value))
        elif isinstance(message, Verdict):
            self.item.user_properties.append((f"{message.metric}_verdict", message.status))
        elif isinstance(message, Attachment):
            self.item.stash.setdefault(reporting.ATTACHMENTS_KEY, []).append(message)


CURRENT_KEY = pytest.StashKey[CurrentTest]()


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = _session(config)
    owner = config.stash.get(TARGET_OWNER, None)
    option = "--bm-target" if owner else "--target"
    targets = ", ".join(session.settings.targets) or f"none (pass {option} BOARD)"
    lines = [f"baremetal: targets {targets}; profile {session.settings.profile or 'reference'}"]
    if owner:
        lines.append(f"baremetal: --target belongs to {owner}; choose boards with --bm-target")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not _uses_our_board(metafunc):
        return
    session = _session(metafunc.config)
    try:
        names = list(session.target_names)
    except BaremetalError as error:
        raise pytest.UsageError(str(error)) from error
    if not names:
        option = "--bm-target" if TARGET_OWNER in metafunc.config.stash else "--target"
        names = [pytest.param(None, marks=pytest.mark.skip(  # type: ignore[list-item]
            reason=f"no board selected: pass {option} BOARD (e.g. {option} qemu-tcg)"))]
    metafunc.parametrize("board", names, indirect=True, scope="session",
                         ids=lambda n: n or "no-target")


def _uses_our_board(metafunc: pytest.Metafunc) -> bool:
    """True when the test's `board` is this plugin's (a project's own `board` is left alone)."""
    if "board" not in metafunc.fixturenames:
        return False
    return _ours(metafunc._arg2fixturedefs)  # the closure pytest resolved


def _ours(name2defs: Any) -> bool:
    defs = name2defs.get("board")
    return bool(defs) and defs[-1].func.__module__ == __name__


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    session = _session(config)
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is not None and "board" in info.name2fixturedefs \
                and not _ours(info.name2fixturedefs):
            continue  # the project's own `board`: not ours to select or skip
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
def board(request: pytest.FixtureRequest, bm_session: BaremetalSession) -> Board[Any]:
    """The parsed board this test runs on (one parametrization per --target)."""
    return bm_session.board(request.param)


@pytest.fixture
def dut(request: pytest.FixtureRequest, board: Board[Any],
        bm_session: BaremetalSession) -> Iterator[Dut]:
    """The booted build on `board`, shared by every test with the same guest configuration."""
    config = bm_session.guest_config(config_from_markers(request.node, bm_session.profile),
                                     request.node.nodeid)
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
    request.node.user_properties.append(("bm_log", _artifact_path(request.config, dut.log_path)))
    request.node.user_properties.append(("bm_accelerator", dut.info.accelerator))
    if dut.info.fallback_reason:
        request.node.user_properties.append(("bm_fallback", dut.info.fallback_reason))
    if dut.info.retries:
        request.node.user_properties.append(("bm_boot_retried", "; ".join(dut.info.retries)))
    duts = request.node.stash.setdefault(DUTS_KEY, [])
    if dut not in duts:
        duts.append(dut)
    budget.record(request.config, dut)
    return dut


DUTS_KEY = reporting.DUTS_KEY


def _artifact_path(config: pytest.Config, path: Path) -> str:
    """``path`` relative to the JUnit file's folder (the CI artifacts), else as it is."""
    xml = config.getoption("xmlpath", None)
    folder = Path(xml).resolve().parent if xml else Path.cwd()
    try:
        return path.resolve().relative_to(folder).as_posix()
    except ValueError:
        return str(path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    duts = item.stash.get(DUTS_KEY, [])
    retried = call.excinfo.value.retried if call.excinfo is not None and isinstance(
        call.excinfo.value, BaremetalError) else ()
    if report.failed and retried:
        report.sections.append(("baremetal boot retries", "\n".join(retried)))
    if report.failed and call.excinfo is not None:
        from pytest_baremetal.reporting import categories

        category = categories.of_test(call.excinfo.value, duts)
        if category is not None:
            item.user_properties.append(("bm_category", category.id))  # JUnit reads teardown
    if report.failed:
        for attachment in item.stash.get(reporting.ATTACHMENTS_KEY, []):
            if attachment.on_failure:
                report.sections.append((attachment.name, attachment.read()))
    if report.failed and duts:
        session = _session(item.config)
        for dut in duts:
            if session.perf is not None:
                session.perf.mark_failed(dut)
            info = dut.info
            text = [f"board {dut.board.name}, accelerator {info.accelerator}"
                    + (f" (fell back: {info.fallback_reason})" if info.fallback_reason else ""),
                    *[f"boot retried after: {reason}" for reason in info.retries],
                    f"console log: {dut.log_path}", "", dut.tail(30)]
            report.sections.append((f"baremetal console ({dut.board.name})", "\n".join(text)))
    return report


@pytest.fixture
def bm_reference(bm_session: BaremetalSession) -> Callable[[Dut], HostReference]:
    """`bm_reference(dut)`: the host reference for that boot's model, tokenizer and settings
    (`bm_reference(dut, prompt=..., steps=...)` for a build that does not print them)."""

    def make(dut: Dut, **given: object) -> HostReference:
        from pytest_baremetal import host_reference

        profile = bm_session.profile
        try:  # a build without a `cfg` line: the test gives prompt, steps, ... itself
            fields = dict(dut.event("cfg").fields) if profile.provides("cfg") else {}
            return host_reference.for_boot({**fields, **given}, dut.build.files,
                                           profile.encoder)
        except BaremetalError as error:
            pytest.skip(f"no host reference for this build: {error}")

    return make


@pytest.fixture
def bm_model_server(request: pytest.FixtureRequest,
                    bm_session: BaremetalSession) -> Iterator[FileServer]:
    """The build's files (only those) over HTTP on 127.0.0.1 for this test (see netserve).

    Function scope: the fresh port in its URLs makes every boot that uses them its own,
    so a pooled boot never ran against another test's faults; the log is this test's.
    """
    from pytest_baremetal.netserve import pytest_glue

    board = request.getfixturevalue("board") if "board" in request.fixturenames else None
    with pytest_glue.serve_for_test(request.node, bm_session, board) as server:
        yield server


@pytest.fixture(scope="session")
def bm_perf(request: pytest.FixtureRequest,
            bm_session: BaremetalSession) -> Iterator[PerfTracker]:
    """Records tok/s samples in the history store and judges them against the baseline."""
    from pytest_baremetal.perf_tracking import PerfTracker

    s = bm_session.settings
    tracker = PerfTracker(s.history or str(s.root / "reports" / "history.sqlite"),
                          s.baseline, s.update_baseline, s.release)
    tracker.attach_trend = reporting.trend_attacher(request.config)
    bm_session.perf = tracker
    yield tracker
    bm_session.perf = None
    tracker.close()

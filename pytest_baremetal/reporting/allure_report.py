"""Allure for bare-metal tests: labels, steps, attachments, figures and failure categories.

Imported only when allure-pytest is installed and ``--alluredir`` is given (see
``pytest_baremetal.reporting.enable``). ``AllureBaremetal`` is a pytest plugin object: its
hooks attach each boot a test used once the test has run, label failures with their
category, and write ``categories.json`` and ``environment.properties`` for the session.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import time
import types
from collections.abc import Callable, Generator, Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import allure
import pytest
from allure_commons import plugin_manager
from allure_commons.model2 import Parameter, Status, StatusDetails, TestStepResult
from allure_commons.reporter import AllureReporter as AllureLogger

from pytest_baremetal.bus import Message, Metric, Verdict, WaitEnded, WaitStarted
from pytest_baremetal.dut import Dut
from pytest_baremetal.markers import Event
from pytest_baremetal.reporting import ATTACHMENTS_KEY, DUTS_KEY, categories, environment

TEXT = allure.attachment_type.TEXT
# allure-python's functions carry no annotations: use them through Any.
_dynamic: Any = allure.dynamic
_attach: Any = allure.attach


def _logger() -> Any:
    """allure-pytest's reporter (its open tests and steps), or None when it is not active."""
    for plugin in plugin_manager.get_plugins():
        logger = getattr(plugin, "allure_logger", None)
        if isinstance(logger, AllureLogger):
            return logger
    return None


def _ms(monotonic: float) -> int:
    """A ``time.monotonic()`` instant as Allure's wall-clock milliseconds."""
    return int((time.time() - (time.monotonic() - monotonic)) * 1000)


def _first(events: Iterable[Event], kind: str) -> Event | None:
    return next((e for e in events if e.kind == kind), None)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.0f}"


def add_step(name: str, start_ms: int, stop_ms: int, status: str = Status.PASSED,
             params: Mapping[str, str] | None = None, message: str | None = None) -> None:
    """Adds a finished step (with its real times) to the current test or step."""
    logger = _logger()
    if logger is None:
        return
    uuid = str(uuid4())
    parameters = [Parameter(name=k, value=v) for k, v in (params or {}).items()]
    step = TestStepResult(name=name, start=start_ms, stop=max(start_ms, stop_ms),
                          parameters=parameters, status=status)
    if message:
        step.statusDetails = StatusDetails(message=message)
    logger.start_step(None, uuid, step)
    logger.stop_step(uuid)


@contextmanager
def step(name: str, **params: str) -> Generator[None, None, None]:
    """A live step around a block: failed (assertion) or broken (other error) when it raises."""
    logger = _logger()
    if logger is None:
        yield
        return
    uuid = str(uuid4())
    item = TestStepResult(name=name, start=int(time.time() * 1000), status=Status.PASSED,
                          parameters=[Parameter(name=k, value=v) for k, v in params.items()])
    logger.start_step(None, uuid, item)
    try:
        yield
    except BaseException as error:
        item.status = Status.FAILED if isinstance(error, AssertionError) else Status.BROKEN
        item.statusDetails = StatusDetails(message=str(error).splitlines()[0] if str(error)
                                           else type(error).__name__)
        raise
    finally:
        logger.stop_step(uuid, stop=int(time.time() * 1000))


def labels(dut: Dut) -> dict[str, str]:
    """The labels of a boot: board, target kind, accelerator and why, CPU, build, model."""
    info, board, events = dut.info, dut.board, list(dut.console.events)
    found: dict[str, str] = {"board": str(board.name), "target": str(board.kind),
                             "accelerator": info.accelerator}
    if info.fallback_reason:
        found["fallback"] = f"{info.requested_accelerator} -> {info.accelerator}: " \
                            f"{info.fallback_reason}"
    cpu = _first(events, "cpu")
    guest_cpu = (f"{cpu.fields.get('vendor')} family {cpu.fields.get('family')} "
                 f"model {cpu.fields.get('model')}") if cpu else ""
    emulated = info.description.labels.get("cpu")
    if emulated:
        found["cpu"] = f"{emulated} ({guest_cpu})" if guest_cpu else emulated
    elif guest_cpu:
        found["cpu"] = guest_cpu
    if info.retries:
        found["boot retried"] = "; ".join(info.retries)
    boot = _first(events, "boot")
    if boot is not None:
        found["build"] = f"{boot.fields.get('name')} {boot.fields.get('version')} " \
                         f"({boot.fields.get('build')})"
    model = _first(events, "model")
    cfg = _first(events, "cfg")
    if model is not None:
        found["model"] = f"{model.fields.get('file')} ({model.fields.get('params')} params)"
    elif cfg is not None and cfg.fields.get("model"):
        found["model"] = str(cfg.fields["model"])
    return found


def events_json(events: Iterable[Event]) -> str:
    """The parsed events as a JSON array (time in seconds since the console opened)."""
    rows = [{"kind": e.kind, "time": round(e.time, 6), "fields": e.fields, "units": e.units,
             "line": e.line} for e in events]
    return json.dumps(rows, indent=1, default=str)


def figures_csv(events: Iterable[Event]) -> str:
    """Every field with a unit (tok/s, ns, ms...) as CSV rows: event, field, value, unit,
    time, and what the row is about (a benchmark's module name, a repeat's number)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["event", "field", "value", "unit", "time_s", "name"])
    for event in events:
        for name, unit in event.units.items():
            value = event.fields.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                writer.writerow([event.kind, name, value, unit, f"{event.time:.3f}",
                                 row_name(event.fields)])
    return out.getvalue()


def machine_description(dut: Dut) -> tuple[str, str]:
    """(attachment name, text): how the machine was started (QEMU's command line, or the
    physical board's boot steps), as the target described it."""
    description = dut.info.description
    return description.title, description.text
def row_name(fields: Mapping[str, object]) -> str:
    """The field that names an event's row: ``module``/``name``, else ``repeat=N``."""
    for key in ("module", "name"):
        if isinstance(fields.get(key), str):
            return str(fields[key])
    return f"repeat={fields['repeat']}" if "repeat" in fields else ""




def attach_boot(dut: Dut, first_use: bool = True) -> None:
    """Labels, boot steps and attachments of one boot, for the test being reported.

    ``first_use`` is False when an earlier test already used (and booted) this machine.
    """
    for name, value in labels(dut).items():
        _dynamic.label(name, value)
    _boot_steps(dut, first_use)
    board = dut.board.name
    console = dut.console
    # from disk: the console keeps only a window of a long boot in memory, its files have all
    raw = Path(console.log_path)
    if raw.is_file():
        _attach.file(raw, name=f"console {board} (raw, timestamped)", attachment_type=TEXT,
                     extension="log")
    cleaned = Path(console.text_path)
    if cleaned.is_file():
        _attach.file(cleaned, name=f"console {board}", attachment_type=TEXT, extension="txt")
    name, text = machine_description(dut)
    _attach(text, name=f"{name} ({board})", attachment_type=TEXT, extension="txt")
    stderr = dut.info.log_dir / "qemu.stderr" if dut.info.log_dir else None
    if stderr is not None and stderr.is_file() and stderr.stat().st_size:
        _attach.file(stderr, name=f"qemu.stderr ({board})", attachment_type=TEXT)
    events = list(console.events)
    _attach(events_json(events), name=f"events {board}",
                  attachment_type=allure.attachment_type.JSON)
    figures = figures_csv(events)
    if figures.count("\n") > 1:
        _attach(figures, name=f"figures {board}", attachment_type=allure.attachment_type.CSV)


def _boot_steps(dut: Dut, first_use: bool) -> None:
    """Boot steps with the times the console recorded, placed before the test's own steps."""
    logger = _logger()
    test = logger.get_test(None) if logger is not None else None
    before = len(test.steps) if test is not None else 0
    _add_boot_steps(dut, first_use)
    if test is not None:
        added = test.steps[before:]
        del test.steps[before:]
        test.steps[0:0] = added


def _add_boot_steps(dut: Dut, first_use: bool) -> None:
    """Power on -> first output -> banner -> done (the console log opens at power-on)."""
    info, console = dut.info, dut.console
    t0 = console.log.t0 or info.started_at
    if not t0:
        return
    base = _ms(t0)
    shared = {} if first_use else {"boot": "shared: booted for an earlier test"}
    first = info.first_output_s
    first_ms = base + int(first * 1000) if first is not None else base
    params = {**shared, "first output after": f"{first:.2f} s"} if first is not None else shared
    add_step(f"power on {dut.board.name} ({info.accelerator})", base, first_ms, params=params)
    events = list(console.events)
    boot = _first(events, "boot")
    if boot is not None:
        add_step("boot: firmware hands over, banner printed", first_ms,
                 base + int(boot.time * 1000), params={"at": f"{boot.time:.2f} s"})
    done = _first(events, "done")
    if boot is not None and done is not None:
        add_step(f"run to [done] status={done.fields.get('status')}",
                 base + int(boot.time * 1000), base + int(done.time * 1000),
                 params={"at": f"{done.time:.2f} s"})


def record_metric(name: str, value: float, unit: str, trend_png: Path | None = None) -> None:
    """A figure of the current test: a parameter (kept out of the history id) and its trend."""
    # the name alone: Allure cuts long parameter names ("decode_tok_s (t..."); the unit is
    # in the "figures recorded" attachment and the verdict
    _dynamic.parameter(name, float(_fmt(value)), excluded=True)
    if trend_png is not None:
        attach_trend(trend_png, name)


def attach_verdict(metric: str, status: str, text: str) -> None:
    """The perf verdict of the current test (passing or not): a parameter with its status
    and the full explanation (baseline, samples, method, power) as a text attachment."""
    _dynamic.parameter(f"{metric} verdict", status.replace("_", " "), excluded=True)
    _attach(text + "\n", name=f"verdict {metric}", attachment_type=TEXT)


def attach_trend(png: Path, metric: str) -> None:
    """Attaches a trend chart (a PNG the history module drew) to the current test."""
    if png.is_file():
        _attach.file(png, name=f"trend {metric}", attachment_type=allure.attachment_type.PNG)


def name_finalizers(fixturedef: Any) -> None:
    """Names a fixture's finalizers before allure-pytest turns them into teardown steps,
    which it names ``<fixture>::<function name>``: pytest's own are a lambda and partials
    (``dut::<lambda>``, ``dut::0``)."""
    finalizers: list[Any] = fixturedef.__dict__.get("_finalizers", [])
    for index, finalizer in enumerate(finalizers):
        if isinstance(finalizer, functools.partial):
            func = finalizer.func
            if isinstance(func, types.FunctionType) and func.__name__ == "_teardown_yield_fixture":
                fixture = finalizer.args[0] if finalizer.args else None
                owner = fixture.__name__ if isinstance(fixture, types.FunctionType) else "it"
                name = f"teardown of {owner} (after its yield)"
            else:
                name = "finish the fixtures that use it"
        elif isinstance(finalizer, types.FunctionType) and finalizer.__name__ == "<lambda>":
            name = "fixture finished"
        else:
            continue
        finalizers[index] = _named(finalizer, name)


def _named(finalizer: Callable[[], object], name: str) -> Callable[[], object]:
    def call() -> object:
        return finalizer()

    call.__name__ = name
    return call


_DONE = pytest.StashKey[set[str]]()
_SETUP_MS = pytest.StashKey[int]()


def _time_from_setup(item: pytest.Item) -> None:
    """Starts the test's time at its setup rather than its call (allure-pytest's choice): a
    pooled boot happens in the setup of the first test that needs it, which then shows it,
    instead of no test at all."""
    logger = _logger()
    test = logger.get_test(None) if logger is not None else None
    start = item.stash.get(_SETUP_MS, None)
    if test is not None and start is not None and test.start is not None:
        test.start = min(test.start, start)


class AllureBaremetal:
    """The pytest plugin object: per-test boot attachments, categories, environment.

    It subscribes to the run's event bus: waits become live steps, metrics parameters,
    verdicts a parameter and their explanation, attachments attachments of the test that
    is running.
    """

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = results_dir
        self._used: set[int] = set()  # ids of the boots an earlier test already reported
        self._boots: dict[int, Dut] = {}
        self._figures: list[Metric] = []
        self._steps: list[Any] = []

    # -- the bus -------------------------------------------------------------------------
    def on_message(self, message: Message) -> None:
        if isinstance(message, WaitStarted):
            name = message.what if message.what.startswith("await ") else \
                f"await {message.what}"
            context = step(name, board=message.board)
            context.__enter__()
            self._steps.append(context)
        elif isinstance(message, WaitEnded) and self._steps:
            context = self._steps.pop()
            error = message.error
            if error is None:
                context.__exit__(None, None, None)
            else:
                with contextlib.suppress(BaseException):
                    context.__exit__(type(error), error, error.__traceback__)
        elif isinstance(message, Metric):
            self._figures.append(message)
            record_metric(message.name, message.value, message.unit)
        elif isinstance(message, Verdict):
            attach_verdict(message.metric, message.status, message.text)

    # -- pytest hooks --------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        categories.write_categories(self.results_dir)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._figures = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.stash[_SETUP_MS] = int(time.time() * 1000)

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, None, None]:
        yield  # inside allure-pytest's wrapper: runs before it names the finalizers
        name_finalizers(fixturedef)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        done = item.stash.setdefault(_DONE, set())
        if report.when == "call":
            _time_from_setup(item)
        duts: list[Dut] = item.stash.get(DUTS_KEY, [])
        attachments = item.stash.get(ATTACHMENTS_KEY, [])
        due = report.when == "call" or report.failed
        if attachments and "attachments" not in done and due:
            done.add("attachments")
            for attachment in attachments:
                _attach(attachment.read(), name=attachment.name, attachment_type=TEXT)
        if duts and "attached" not in done and due:
            done.add("attached")
            for dut in duts:
                attach_boot(dut, first_use=id(dut) not in self._used)
                self._used.add(id(dut))
                self._boots[id(dut)] = dut
            if self._figures:
                rows = "\n".join(f"{m.name},{m.value},{m.unit}" for m in self._figures)
                _attach("metric,value,unit\n" + rows + "\n", name="figures recorded",
                        attachment_type=allure.attachment_type.CSV)
        callspec = item.callspec if isinstance(item, pytest.Function) and hasattr(
            item, "callspec") else None
        if not duts and "board" not in done and report.when == "setup" and report.skipped:
            done.add("board")  # skipped before it got a boot: still listed under its board
            board = callspec.params.get("board") if callspec is not None else None
            if board:
                _dynamic.label("board", str(board))
        if report.failed and "labelled" not in done and call.excinfo is not None:
            done.add("labelled")
            category = categories.of_test(call.excinfo.value, duts)
            if category is not None:
                _dynamic.label(categories.LABEL, category.name)
        return report

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        boots = [(d.board.name, d.info.accelerator, dict(d.info.description.facts))
                 for d in self._boots.values()]
        facts = environment.host_facts() | environment.boot_facts(boots)
        environment.write_environment(self.results_dir, facts)

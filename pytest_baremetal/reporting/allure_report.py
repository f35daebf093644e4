"""Allure for bare-metal tests: labels, steps, attachments, figures and failure categories.

Imported only when allure-pytest is installed and ``--alluredir`` is given (see
``pytest_baremetal.reporting.enable``). ``AllureBaremetal`` is a pytest plugin object: its
hooks attach each boot a test used once the test has run, label failures with their
category, and write ``categories.json`` and ``environment.properties`` for the session.
"""

from __future__ import annotations

import csv
import io
import json
import shlex
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Protocol
from uuid import uuid4

import allure
import pytest
from allure_commons import plugin_manager
from allure_commons.model2 import Parameter, Status, StatusDetails, TestStepResult
from allure_commons.reporter import AllureReporter as AllureLogger

from pytest_baremetal.dut import BootInfo, Metric
from pytest_baremetal.markers import Event
from pytest_baremetal.reporting import categories, environment

TEXT = allure.attachment_type.TEXT
# allure-python's functions carry no annotations: use them through Any.
_dynamic: Any = allure.dynamic
_attach: Any = allure.attach


class BoardLike(Protocol):
    name: str
    kind: str
    cpu: str
    description: str


class LineLike(Protocol):
    text: str


class ConsoleLike(Protocol):
    @property
    def log_path(self) -> Path: ...
    @property
    def lines(self) -> Sequence[LineLike]: ...
    @property
    def events(self) -> Sequence[Event]: ...


class DutLike(Protocol):
    """What the reporter reads from a ``Dut`` (a stand-in with these attributes will do)."""

    board: Any
    info: BootInfo
    console: Any
    on_metric: Callable[[Metric], None] | None


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


def wait_step(dut: DutLike, what: str) -> Any:
    """The step hook ``Dut`` calls around each wait: ``with hook(what): ...``.

    ``Dut`` names its waits ``await boot``, ``await /regex/``; a bare ``what`` gets the prefix.
    """
    name = what if what.startswith("await ") else f"await {what}"
    return step(name, board=str(dut.board.name))


def labels(dut: DutLike) -> dict[str, str]:
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
    if board.kind == "qemu":
        found["cpu"] = f"{board.cpu} ({guest_cpu})" if guest_cpu else str(board.cpu)
    elif guest_cpu:
        found["cpu"] = guest_cpu
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
    """Every field with a unit (tok/s, ns, ms...) as CSV rows: event, field, value, unit."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["event", "field", "value", "unit", "time_s"])
    for event in events:
        for name, unit in event.units.items():
            value = event.fields.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                writer.writerow([event.kind, name, value, unit, f"{event.time:.3f}"])
    return out.getvalue()


def machine_description(dut: DutLike) -> tuple[str, str]:
    """(attachment name, text): the QEMU command line, or the physical board's description."""
    info, board = dut.info, dut.board
    if info.argv:
        text = shlex.join(info.argv)
        if info.attempts:
            text += "\n\n# attempts\n" + "\n".join(info.attempts)
        return "QEMU command line", text + "\n"
    physical = getattr(board, "physical", None)
    data: dict[str, Any] = {"name": board.name, "kind": board.kind,
                            "description": getattr(board, "description", "")}
    if physical:
        data["physical"] = dict(physical)
    elif is_dataclass(board) and not isinstance(board, type):
        data = asdict(board)
    return "board", json.dumps(data, indent=2, default=str) + "\n"


def attach_boot(dut: DutLike, first_use: bool = True) -> None:
    """Labels, boot steps and attachments of one boot, for the test being reported.

    ``first_use`` is False when an earlier test already used (and booted) this machine.
    """
    for name, value in labels(dut).items():
        _dynamic.label(name, value)
    _boot_steps(dut, first_use)
    board = dut.board.name
    console = dut.console
    raw = Path(console.log_path)
    if raw.is_file():
        _attach(raw.read_bytes(), name=f"console {board} (raw, timestamped)",
                      attachment_type=TEXT, extension="log")
    cleaned = "\n".join(line.text for line in console.lines)
    partial = getattr(console, "partial_line", "")
    _attach(cleaned + ("\n" + partial if partial else "") + "\n",
                  name=f"console {board}", attachment_type=TEXT, extension="txt")
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


def _boot_steps(dut: DutLike, first_use: bool) -> None:
    """Boot steps with the times the console recorded, placed before the test's own steps."""
    logger = _logger()
    test = logger.get_test(None) if logger is not None else None
    before = len(test.steps) if test is not None else 0
    _add_boot_steps(dut, first_use)
    if test is not None:
        added = test.steps[before:]
        del test.steps[before:]
        test.steps[0:0] = added


def _add_boot_steps(dut: DutLike, first_use: bool) -> None:
    """Power on -> first output -> banner -> done (the console log opens at power-on)."""
    info, console = dut.info, dut.console
    t0 = getattr(getattr(console, "log", None), "t0", None) or info.started_at
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
    _dynamic.parameter(f"{name} ({unit})" if unit else name, float(_fmt(value)), excluded=True)
    if trend_png is not None:
        attach_trend(trend_png, name)


def attach_trend(png: Path, metric: str) -> None:
    """Attaches a trend chart (a PNG the history module drew) to the current test."""
    if png.is_file():
        _attach.file(png, name=f"trend {metric}", attachment_type=allure.attachment_type.PNG)


def label_failure(error: BaseException | None, fallback_reason: str | None = None) -> None:
    """Labels the current test with its failure category (``failure``)."""
    category = categories.classify(error, fallback_reason)
    if category is not None:
        _dynamic.label(categories.LABEL, category.name)


_DUTS = pytest.StashKey[list[Any]]()
_FIGURES = pytest.StashKey[list[Metric]]()
_DONE = pytest.StashKey[set[str]]()


class AllureBaremetal:
    """The pytest plugin object: per-test boot attachments, categories, environment."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = results_dir
        self._used: set[int] = set()  # ids of the boots an earlier test already reported
        self._boots: dict[int, tuple[str, str, Sequence[str]]] = {}

    def on_dut(self, item: pytest.Item, dut: DutLike) -> None:
        """Remember that ``item`` uses ``dut``; route its metrics and waits to this test."""
        duts = item.stash.setdefault(_DUTS, [])
        if dut not in duts:
            duts.append(dut)
        self._boots[id(dut)] = (str(dut.board.name), dut.info.accelerator, list(dut.info.argv))
        figures = item.stash.setdefault(_FIGURES, [])
        previous = getattr(dut.on_metric, "__wrapped__", dut.on_metric)

        def on_metric(metric: Metric) -> None:
            if previous is not None:
                previous(metric)
            figures.append(metric)
            record_metric(metric.name, metric.value, metric.unit)

        on_metric.__wrapped__ = previous  # type: ignore[attr-defined]
        dut.on_metric = on_metric
        if hasattr(dut, "on_wait"):
            dut.on_wait = lambda what: wait_step(dut, what)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        categories.write_categories(self.results_dir)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        done = item.stash.setdefault(_DONE, set())
        duts: list[DutLike] = item.stash.get(_DUTS, [])
        if duts and "attached" not in done and (report.when == "call" or report.failed):
            done.add("attached")
            for dut in duts:
                attach_boot(dut, first_use=id(dut) not in self._used)
                self._used.add(id(dut))
            figures = item.stash.get(_FIGURES, [])
            if figures:
                rows = "\n".join(f"{m.name},{m.value},{m.unit}" for m in figures)
                _attach("metric,value,unit\n" + rows + "\n", name="figures recorded",
                              attachment_type=allure.attachment_type.CSV)
        if not duts and "board" not in done and report.when == "setup" and report.skipped:
            done.add("board")  # skipped before it got a boot: still listed under its board
            board = getattr(getattr(item, "callspec", None), "params", {}).get("board")
            if board:
                _dynamic.label("board", str(board))
        if report.failed and "labelled" not in done and call.excinfo is not None:
            done.add("labelled")
            reason = next((d.info.fallback_reason for d in duts if d.info.fallback_reason), None)
            label_failure(call.excinfo.value, reason)
        return report

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        facts = environment.host_facts() | environment.boot_facts(self._boots.values())
        environment.write_environment(self.results_dir, facts)

"""Reports of a run. Allure support loads only with allure-pytest and ``--alluredir``.

The plugin calls ``enable(config, bus)`` from ``pytest_configure`` (the reporter then
subscribes to the run's event bus) and ``trend_attacher(config)`` for the performance
tracker's charts. A test's boots are in ``item.stash[DUTS_KEY]``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_baremetal.bus import Attachment, EventBus
    from pytest_baremetal.dut import Dut
    from pytest_baremetal.reporting.allure_report import AllureBaremetal

PLUGIN_NAME = "baremetal-allure"
#: the boots a test used, in the order it got them
DUTS_KEY = pytest.StashKey[list["Dut"]]()
#: what the test published for its report (request logs...), attached once it has run
ATTACHMENTS_KEY = pytest.StashKey[list["Attachment"]]()


def _alluredir(config: pytest.Config) -> Path | None:
    value = config.getoption("allure_report_dir", None)
    return Path(value) if value else None


def enable(config: pytest.Config, bus: EventBus | None = None) -> bool:
    """Registers the Allure reporter when ``--alluredir`` is given; True if it is active."""
    if config.pluginmanager.has_plugin(PLUGIN_NAME):
        return True
    results = _alluredir(config)
    if results is None:
        return False
    from pytest_baremetal.reporting.allure_report import AllureBaremetal

    reporter = AllureBaremetal(results)
    config.pluginmanager.register(reporter, PLUGIN_NAME)
    if bus is not None:
        bus.subscribe(reporter.on_message)
    return True


def reporter(config: pytest.Config) -> AllureBaremetal | None:
    """The active Allure reporter, or None."""
    plugin: AllureBaremetal | None = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin


def trend_attacher(config: pytest.Config) -> Callable[[Path, str], None] | None:
    """What attaches a trend chart (PNG, metric) to the current test, or None without Allure.

    ``PerfTracker.attach_trend`` takes it: the tracker draws charts only when it is set.
    """
    if reporter(config) is None:
        return None
    from pytest_baremetal.reporting.allure_report import attach_trend

    return attach_trend

"""Reports of a run. Allure support loads only with allure-pytest and ``--alluredir``.

The plugin calls three functions: ``enable(config)`` from ``pytest_configure`` and
``on_dut(item, dut)`` whenever a test gets a boot, and ``trend_attacher(config)`` for the
performance tracker's charts. They do nothing without Allure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_baremetal.reporting.allure_report import AllureBaremetal

PLUGIN_NAME = "baremetal-allure"


def _alluredir(config: pytest.Config) -> Path | None:
    value = getattr(config.option, "allure_report_dir", None)
    return Path(value) if value else None


def enable(config: pytest.Config) -> bool:
    """Registers the Allure reporter when ``--alluredir`` is given; True if it is active."""
    if config.pluginmanager.has_plugin(PLUGIN_NAME):
        return True
    results = _alluredir(config)
    if results is None:
        return False
    from pytest_baremetal.reporting.allure_report import AllureBaremetal

    config.pluginmanager.register(AllureBaremetal(results), PLUGIN_NAME)
    return True


def reporter(config: pytest.Config) -> AllureBaremetal | None:
    """The active Allure reporter, or None."""
    plugin: AllureBaremetal | None = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin


def on_dut(item: pytest.Item, dut: Any) -> None:
    """Tells the reporter that ``item`` uses ``dut`` (call it after setting ``dut.on_metric``)."""
    active = reporter(item.config)
    if active is not None:
        active.on_dut(item, dut)


def trend_attacher(config: pytest.Config) -> Callable[[Path, str], None] | None:
    """What attaches a trend chart (PNG, metric) to the current test, or None without Allure.

    ``PerfTracker.attach_trend`` takes it: the tracker draws charts only when it is set.
    """
    if reporter(config) is None:
        return None
    from pytest_baremetal.reporting.allure_report import attach_trend

    return attach_trend

"""The suites use this plugin's `board` and `dut` even when another installed plugin defines
fixtures of the same names (pytest-embedded has a `dut`): a conftest's fixtures win over
every plugin's."""

from pytest_baremetal.plugin import board, dut

__all__ = ["board", "dut"]

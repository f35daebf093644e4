"""Report details: one environment block per board across runs sharing a results folder,
benchmark rows named in the figures CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_baremetal.markers import Event
from pytest_baremetal.reporting.allure_report import figures_csv
from pytest_baremetal.reporting.environment import (
    boot_facts,
    read_environment,
    write_environment,
)

# the facts a boot learned
ARGV = {"qemu": "QEMU 7.2.0 (qemu-system-x86_64)", "firmware": "/nonexistent/OVMF.fd"}


def test_each_board_keeps_its_block_when_runs_share_the_results(tmp_path: Path) -> None:
    write_environment(tmp_path, {"host": "h", "note": "a = b: c\\d\nx"}
                      | boot_facts([("qemu-tcg-icount", "tcg", ARGV)]))
    write_environment(tmp_path, {"host": "h"} | boot_facts([("qemu-kvm", "tcg (fallback)",
                                                             ARGV)]))
    facts = read_environment(tmp_path / "environment.properties")
    assert facts["boards"] == "qemu-tcg-icount (tcg), qemu-kvm (tcg (fallback))"
    assert facts["qemu-tcg-icount.accelerator"] == "tcg"
    assert facts["qemu-kvm.accelerator"] == "tcg (fallback)"
    assert facts["qemu-tcg-icount.firmware"] == facts["qemu-kvm.firmware"] == \
        "/nonexistent/OVMF.fd"
    assert facts["note"] == "a = b: c\\d\nx"  # escaping survives the round trip


def test_benchmark_rows_are_named() -> None:
    bench = Event("bench", {"name": "matmul", "median_ns": 1200, "ok": True}, "[bench] ...",
                  1.5, {"median_ns": "ns"})
    perf = Event("perf", {"repeat": 2, "decode_tok_s": 25.4}, "[perf] ...", 2.0,
                 {"decode_tok_s": "tok/s"})
    rows = figures_csv([bench, perf]).splitlines()
    assert rows == ["event,field,value,unit,time_s,name",
                    "bench,median_ns,1200,ns,1.500,matmul",
                    "perf,decode_tok_s,25.4,tok/s,2.000,repeat=2"]


def test_teardown_steps_are_named(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
import pytest
from pytest_baremetal import reporting

def pytest_configure(config):
    reporting.enable(config)

@pytest.fixture
def machine():
    yield "on"
""")
    pytester.makepyfile("def test_uses(machine):\n    assert machine == 'on'\n")
    results = pytester.path / "results"
    pytester.runpytest_subprocess("-p", "no:baremetal", "-p", "no:cacheprovider",
                                  f"--alluredir={results}").assert_outcomes(passed=1)
    names = [after["name"] for path in results.glob("*-container.json")
             for after in json.loads(path.read_text()).get("afters", [])]
    assert "machine::teardown of machine (after its yield)" in names, names
    assert "machine::fixture finished" in names, names
    assert not any("<lambda>" in n or n.endswith("::0") for n in names), names


def test_a_test_is_timed_from_its_setup(pytester: pytest.Pytester) -> None:
    """The boot a pooled fixture does in the setup of the first test that needs it counts in
    that test's time; a later test on the same boot is timed from its own setup."""
    pytester.makeconftest("""
import time
import pytest
from pytest_baremetal import reporting

def pytest_configure(config):
    reporting.enable(config)

BOOTED = []

@pytest.fixture
def machine(request):
    if not BOOTED:  # the first user boots it (a stand-in for the boot pool)
        with open("setup-started.txt", "w") as out:
            out.write(str(int(time.time() * 1000)))
        time.sleep(0.5)
        BOOTED.append("on")
    return BOOTED[0]
""")
    pytester.makepyfile("""
def test_first(machine):
    assert machine == 'on'

def test_second(machine):
    assert machine == 'on'
""")
    results = pytester.path / "results"
    pytester.runpytest_subprocess("-p", "no:baremetal", "-p", "no:cacheprovider",
                                  f"--alluredir={results}").assert_outcomes(passed=2)
    by_name = {data["name"]: data for data in
               (json.loads(p.read_text()) for p in results.glob("*-result.json"))}
    first, second = by_name["test_first"], by_name["test_second"]
    setup_started = int((pytester.path / "setup-started.txt").read_text())
    assert first["start"] <= setup_started and first["stop"] - first["start"] >= 500, first
    assert first["stop"] <= second["start"] <= second["stop"], (first, second)

"""Boot: the firmware hands over to the build, the build says who it is and shuts down cleanly."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.bm_needs_events("boot", "done")


def test_banner_names_the_build(dut):
    boot = dut.event("boot")
    assert boot.fields["name"], "the [boot] line has no name"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(boot.fields["version"])), boot.line
    assert boot.fields["build"] not in ("", "unknown"), f"no build id baked in: {boot.line}"


def test_firmware_handed_over(dut):
    boot = dut.event("boot")
    if dut.board.kind == "qemu":
        assert boot.fields["platform"] == "uefi"
        assert "EDK II" in str(boot.fields["fw_vendor"]), boot.line
    assert dut.info.first_output_s is not None
    assert dut.info.first_output_s < dut.board.timeouts.firmware


def test_run_ends_with_status_ok(dut):
    done = dut.wait_done()
    assert done.fields["status"] == "ok", dut.tail()
    assert not dut.events("error"), dut.events("error")[0].line


def test_machine_powers_off_by_itself(dut):
    dut.wait_done()
    code = dut.wait_power_off()
    assert code == 0, f"QEMU exit status {code} after [done]"


def test_no_output_lost_before_the_banner(dut):
    # The console is attached before the CPU runs: the very first bytes are the
    # firmware's, and the banner comes after them, never cut.
    lines = dut.lines()
    first_boot = next(i for i, line in enumerate(lines) if line.startswith("[boot]"))
    assert all(not line.startswith("[") for line in lines[:first_boot]) or first_boot == 0
    assert lines[first_boot].startswith("[boot] name=")

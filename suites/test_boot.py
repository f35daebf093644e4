"""Boot: the firmware hands over to the build, the build says who it is, its run ends cleanly
(a script build at its `done` line, an interactive one idle at its prompt), and a script
build shuts down by itself."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.bm_needs_events("boot")


@pytest.mark.bm_needs_events(boot=["name", "version", "build"])
def test_banner_names_the_build(dut):
    boot = dut.event("boot")
    assert boot.fields["name"], "the banner has no name"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(boot.fields["version"])), boot.line
    assert boot.fields["build"] not in ("", "unknown"), f"no build id baked in: {boot.line}"


@pytest.mark.bm_needs_events(boot=["platform", "fw_vendor"])
def test_firmware_handed_over(dut):
    boot = dut.event("boot")
    if dut.board.kind == "qemu":
        assert boot.fields["platform"] == "uefi"
        assert "EDK II" in str(boot.fields["fw_vendor"]), boot.line
    assert dut.info.first_output_s is not None
    limit = dut.info.firmware_timeout_s or dut.board.timeouts.firmware
    if limit is not None:
        assert dut.info.first_output_s < limit


def test_run_ends_cleanly(dut):
    """A script build ends with `done` and status ok; an interactive one waits at its prompt.
    Either way no error event was printed."""
    end = dut.wait_done()
    if end.kind == "done" and "status" in end.fields:
        assert end.fields["status"] == "ok", dut.tail()
    else:
        assert end.kind in ("done", "prompt"), end
    if dut.profile.provides("error"):
        assert not dut.events("error"), dut.events("error")[0].line


@pytest.mark.bm_interaction("script")
def test_machine_powers_off_by_itself(dut):
    if not dut.senses_power_off:
        pytest.skip(f"board {dut.board.name} cannot tell whether the machine switched itself "
                    "off (give it physical.power.sense)")
    dut.wait_done()
    code = dut.wait_power_off()
    assert code == 0, f"QEMU exit status {code} after the end of the run"


def test_no_output_lost_before_the_banner(dut):
    # The console is attached before the CPU runs: the first bytes are the firmware's, the
    # banner comes after them, never cut, and no marker of the build comes before it.
    boot = dut.event("boot")
    lines = dut.lines()
    assert boot.line in lines, f"the banner is not a whole line: {boot.line!r}"
    first_boot = lines.index(boot.line)
    before = [e.kind for line in lines[:first_boot] for e in dut.profile.parse(line)]
    assert set(before) <= {"loader"}, f"markers before the banner: {before}"

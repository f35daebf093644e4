"""Failure categories and environment facts (no Allure needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_baremetal.errors import (
    BootError,
    ConfigError,
    ConsoleClosed,
    DeathStringSeen,
    EarlierBootFailed,
    ExpectTimeout,
    FallbackError,
    ImageError,
    PerformanceRegression,
    PowerError,
    PxeError,
    QmpError,
    RelayError,
)
from pytest_baremetal.reporting import categories as cat
from pytest_baremetal.reporting import environment as env

REGRESSION_MSG = "decode tok/s 25.2 vs 29.4 (-14.3%, 95% CI -16.0..-12.9%): regression"


@pytest.mark.parametrize(("error", "expected"), [
    (DeathStringSeen("death string 'X64 Exception Type' seen", pattern="X64 Exception Type"),
     cat.CRASH),
    (ConsoleClosed("console closed while waiting for event 'done'"), cat.CRASH),
    (ExpectTimeout("the guest went quiet: no console output for 30 s", quiet=True), cat.HANG),
    (ExpectTimeout("timed out after 600 s waiting for event 'done'"), cat.HANG),
    (AssertionError("the guest generated 31 tokens, not 32"), cat.WRONG_OUTPUT),
    (PerformanceRegression(REGRESSION_MSG), cat.REGRESSION),
    (AssertionError(REGRESSION_MSG), cat.WRONG_OUTPUT),  # the type decides, not the words
    (AssertionError("decode tok/s 28.1 vs 29.4 (-4.4%): no change (not significant)"),
     cat.WRONG_OUTPUT),
    (BootError("qemu-kvm: kvm: failed to set MSR 0x10a"), cat.INFRASTRUCTURE),
    (BootError("cannot start QEMU qemu-system-x86_64: No such file"), cat.INFRASTRUCTURE),
    (BootError("the firmware printed nothing in 60 s"), cat.INFRASTRUCTURE),
    (PowerError("the switch said nothing"), cat.INFRASTRUCTURE),
    (RelayError("no answer"), cat.INFRASTRUCTURE),
    (QmpError("QMP cont: no answer"), cat.INFRASTRUCTURE),
    (PxeError("PXE-E32"), cat.INFRASTRUCTURE),
    (FallbackError("kvm could not boot"), cat.INFRASTRUCTURE),
    (ImageError("BdsDxe: failed to load Boot0001: Not Found"), cat.BUILD),
    (EarlierBootFailed("failed earlier", ImageError("Not Found")), cat.BUILD),
    (ConfigError("boards/x.yaml", "cpu", "unknown"), cat.INFRASTRUCTURE),
    (OSError("relay /dev/ttyUSB0 did not answer"), cat.INFRASTRUCTURE),
    (RuntimeError("serial adapter FTDI A1 disappeared"), None),  # not ours: a test bug
    (KeyError("decode_tok_s"), None),
    (None, None),
])
def test_classify(error: BaseException | None, expected: cat.Category | None) -> None:
    assert cat.classify(error) is expected


def test_a_closed_console_after_done_ok_is_not_a_crash() -> None:
    """A wait on a guest that printed `[done] status=ok` and powered off is wrong output."""
    closed = ConsoleClosed("the console closed while waiting for event 'answer'")
    assert cat.classify(closed) is cat.CRASH
    assert cat.classify(closed, guest_finished=True) is cat.WRONG_OUTPUT
    assert cat.classify(DeathStringSeen("X64 Exception Type"), guest_finished=True) is cat.CRASH


def test_a_fallback_turns_hangs_and_regressions_into_lab_faults() -> None:
    reason = "kvm: failed to set MSR 0x10a"
    assert cat.classify(PerformanceRegression(REGRESSION_MSG), reason) is cat.INFRASTRUCTURE
    assert cat.classify(ExpectTimeout("went quiet", quiet=True), reason) is cat.INFRASTRUCTURE
    assert cat.classify(DeathStringSeen("X64 Exception Type"), reason) is cat.CRASH
    assert cat.classify(AssertionError("wrong token 7"), reason) is cat.WRONG_OUTPUT


def test_categories_json_matches_the_exception_text(tmp_path: Path) -> None:
    """Allure 2 matches ``traceRegex`` against the whole trace; the order is the priority."""
    path = cat.write_categories(tmp_path / "results")
    entries = json.loads(path.read_text())
    assert [e["name"] for e in entries] == [c.name for c in cat.CATEGORIES]
    traces = {
        "Guest crash": "E   pytest_baremetal.errors.DeathStringSeen: death string",
        "Guest hang": "E   pytest_baremetal.errors.ExpectTimeout: the guest went quiet",
        "Performance regression":
            f"E   pytest_baremetal.errors.PerformanceRegression: {REGRESSION_MSG}",
        "Build does not boot": "E   pytest_baremetal.errors.ImageError: Not Found",
        "Wrong output": "E   AssertionError: assert 31 == 32",
        "Lab or infrastructure fault": "E   pytest_baremetal.errors.BootError: kvm",
    }
    for name, trace in traces.items():
        first = next(e for e in entries if re.fullmatch(e["traceRegex"], trace))
        assert first["name"] == name
        assert cat.by_name(name) is not None


def test_firmware_and_properties(tmp_path: Path) -> None:
    argv = ["qemu-system-x86_64", "-drive",
            "if=pflash,format=raw,unit=0,readonly=on,file=/fw/OVMF_CODE_4M.fd",
            "-drive", "if=pflash,format=raw,unit=1,file=/tmp/boot/OVMF_VARS.fd"]
    assert env.firmware_files(argv) == [Path("/fw/OVMF_CODE_4M.fd")]
    assert env.firmware_files(["q", "-bios", "/usr/share/qemu/OVMF.fd"]) == [
        Path("/usr/share/qemu/OVMF.fd")]
    path = env.write_environment(tmp_path, {"host": "lab-1", "qemu": "QEMU 7.2\nx", "a b": "c=d",
                                            "empty": ""})
    assert path.read_text() == "host=lab-1\nqemu=QEMU 7.2\\nx\na\\ b=c=d\n"

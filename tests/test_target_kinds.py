"""Board kinds: a kind from outside the package runs a suite; boots describe themselves;
lab faults are retried; boot phases reach the live log; a build the firmware cannot boot
fails fast with the firmware's words."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from pytest_baremetal.dut import BootDescription, BootInfo
from pytest_baremetal.reporting import environment

pytest_plugins = ["pytester"]

TOY = Path(__file__).parent / "toy_kind"
SUITE = """
def test_banner(dut):
    assert dut.event("boot").fields["name"] == "toy-guest"

def test_done(dut, board):
    assert dut.wait_done().fields["status"] == "ok"
    assert board.kind == "toy" and board.spec.lines_per_read >= 1
    assert dut.info.description.title == "toy boot"
"""


@pytest.fixture
def toy_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with a toy board; the toy kind is installed (an entry point on sys.path)."""
    shutil.copy(TOY / "toykind.py", pytester.path)
    shutil.copytree(TOY / "toykind-1.0.dist-info", pytester.path / "toykind-1.0.dist-info")
    monkeypatch.syspath_prepend(str(pytester.path))
    sys.modules.pop("toykind", None)
    (pytester.path / "boards").mkdir()
    (pytester.path / "boards" / "toy.yaml").write_text("kind: toy\ntoy: {lines_per_read: 1}\n")
    (pytester.path / "boards" / "flaky-toy.yaml").write_text(
        "kind: toy\ntoy: {power_faults: 1}\n")
    (pytester.path / "app.efi").write_bytes(b"MZ toy")
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def _args(board: str = "toy") -> list[str]:
    return ["--target", board, "--bm-boards=boards", "--bm-efi=app.efi",
            "-p", "no:cacheprovider"]


def test_a_kind_from_outside_runs_a_suite(toy_project: pytest.Pytester) -> None:
    result = toy_project.runpytest_subprocess(*_args(), "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_banner?toy? PASSED*"])


def test_an_unknown_kind_names_the_installed_ones(toy_project: pytest.Pytester) -> None:
    (toy_project.path / "boards" / "odd.yaml").write_text("kind: toyy\n")
    result = toy_project.runpytest_subprocess(*_args("odd"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*odd.yaml: kind: invalid value 'toyy' (did you mean 'toy'?)"
                                 "*qemu, physical, toy*"])


def test_a_lab_fault_is_retried_and_the_report_says_so(toy_project: pytest.Pytester) -> None:
    result = toy_project.runpytest_subprocess(*_args("flaky-toy"), "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    junit = (toy_project.path / "junit.xml").read_text()
    assert 'name="bm_boot_retried" value="PowerError: toy relay stuck (boot 1)"' in junit


def test_no_retry_when_retries_are_off(toy_project: pytest.Pytester) -> None:
    result = toy_project.runpytest_subprocess(*_args("flaky-toy"), "--bm-boot-retries", "0",
                                              "--junitxml=junit.xml")
    result.assert_outcomes(errors=2)
    junit = (toy_project.path / "junit.xml").read_text()
    assert junit.count('name="bm_category" value="infrastructure"') == 2  # by type
    result.stdout.fnmatch_lines(["*PowerError: toy relay stuck (boot 1)*",
                                 "*EarlierBootFailed: boot of flaky-toy*failed earlier*"])


def test_a_rerun_of_the_test_that_saw_a_lab_fault_boots_again() -> None:
    """pytest-rerunfailures reruns the same test: a cached lab fault must not block it."""
    from pytest_baremetal.errors import EarlierBootFailed, ImageError, PowerError
    from pytest_baremetal.guestconfig import GuestConfig
    from pytest_baremetal.pool import BootPool

    failures: list[Exception] = [PowerError("relay stuck"), ImageError("Not Found")]
    booted: list[str] = []

    def booter(board: str, config: GuestConfig) -> object:
        if failures and board == "lab":
            raise failures.pop(0)
        booted.append(board)
        return object()

    pool = BootPool(booter)  # type: ignore[arg-type]
    config = GuestConfig()
    with pytest.raises(PowerError):
        pool.get("lab", config, "t1")
    with pytest.raises(EarlierBootFailed):
        pool.get("lab", config, "t2")          # another test: fails at once
    with pytest.raises(ImageError):
        pool.get("lab", config, "t1")          # the rerun boots again (and the build fails)
    with pytest.raises(EarlierBootFailed):
        pool.get("lab", config, "t1")          # a build fault is final, even for a rerun
    assert booted == []


def test_a_wait_after_done_ok_is_wrong_output_not_a_crash(
        toy_project: pytest.Pytester) -> None:
    """Bug: a wait on a guest that printed `[done] status=ok` was filed as "Guest crash"."""
    toy_project.makepyfile(test_suite="""
        def test_waits_for_a_line_never_printed(dut):
            dut.wait_done()
            dut.expect("never printed", timeout=20)
    """)
    result = toy_project.runpytest_subprocess(*_args(), "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    junit = (toy_project.path / "junit.xml").read_text()
    assert 'name="bm_category" value="wrong-output"' in junit, junit


def test_boot_phases_reach_the_live_log(toy_project: pytest.Pytester) -> None:
    result = toy_project.runpytest_subprocess(*_args(), "--log-cli-level=INFO", "--bm-console",
                                              "-s")
    result.assert_outcomes(passed=2)
    out = result.stdout.str() + result.stderr.str()
    for phase in ("toy: power on (toy) at 0.00 s", "toy: firmware first output at",
                  "toy: guest banner at", "toy: waiting for await boot",
                  "toy: await done after", "toy: done at"):
        assert phase in out, phase
    assert "[toy] [boot] name=toy-guest" in out  # --bm-console streams the console


def test_a_physical_boot_is_not_a_qemu_command_line() -> None:
    """Bug: a physical boot's step list landed in BootInfo.argv, so Allure attached it as
    "QEMU command line" and the environment block ran it with --version."""
    from pytest_baremetal.targets.physical.target import describe_steps

    description = describe_steps(["power off (lcus), wait 3 s", "power on"])
    assert description.title == "physical boot steps" and description.command == ()
    assert "1. power off (lcus), wait 3 s" in description.text
    info = BootInfo("sim", "hardware", "hardware", description=description)
    facts = environment.boot_facts([("sim", info.accelerator, info.description.facts)])
    assert facts == {"boards": "sim (hardware)", "sim.accelerator": "hardware"}  # no qemu
    qemu = BootDescription("QEMU command line", "q\n", command=("q",),
                           facts={"qemu": "QEMU 8.2.2 (q)"})
    assert environment.boot_facts([("t", "tcg", qemu.facts)])["qemu"] == "QEMU 8.2.2 (q)"


needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None
                                or shutil.which("mcopy") is None,
                                reason="needs qemu-system-x86_64 and mtools")


@needs_qemu
@pytest.mark.parametrize("build", ["text-efi", "zero-image"])
def test_a_build_that_cannot_boot_fails_fast_with_the_firmwares_words(
        pytester: pytest.Pytester, build: str) -> None:
    root = Path(__file__).resolve().parents[1]
    if build == "text-efi":
        (pytester.path / "text.efi").write_text("this is not an EFI application\n")
        option = ["--bm-efi", "text.efi"]
    else:
        (pytester.path / "zero.img").write_bytes(b"")
        option = ["--bm-image", "zero.img"]
    pytester.makepyfile(test_boot="def test_banner(dut):\n    dut.event('boot')\n\n"
                                  "def test_again(dut):\n    dut.event('boot')\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--target", "qemu-tcg", f"--bm-boards={root / 'boards'}", *option,
        "-p", "no:cacheprovider", "--junitxml=junit.xml", timeout=240)
    took = time.monotonic() - started
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "ImageError: qemu-tcg: the firmware could not boot this build: BdsDxe: failed to " \
        "load Boot0001" in out, out
    assert "EarlierBootFailed" in out  # the second test fails at once, not after a timeout
    junit = (pytester.path / "junit.xml").read_text()
    assert junit.count('name="bm_category" value="lab/build"') == 2
    print(f"{build}: failed in {took:.1f} s")


def test_a_long_wait_says_what_it_waits_for(caplog: pytest.LogCaptureFixture) -> None:
    from pytest_baremetal.bus import EventBus, WaitEnded, WaitStarted
    from pytest_baremetal.live import LiveLog

    bus = EventBus()
    bus.subscribe(LiveLog(stream_console=False, remind_every=0.2))
    with caplog.at_level("INFO", logger="pytest_baremetal"):
        bus.publish(WaitStarted("qemu-tcg", "await done", 600.0))
        deadline = time.monotonic() + 10
        while "still waiting for await done" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        bus.publish(WaitEnded("qemu-tcg", "await done", 0.5))
    assert "qemu-tcg: waiting for await done (up to 600 s)" in caplog.text
    assert "qemu-tcg: still waiting for await done" in caplog.text

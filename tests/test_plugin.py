"""The plugin as a user meets it: options, errors, boots, failures and clean-up.

Each test runs pytest in a subprocess (pytester) so the plugin loads from its entry point,
with the fixture guest (tests/fixture_guest) booting in a few seconds under QEMU TCG.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PROFILE = ROOT / "tests" / "data" / "fixture-profile.yaml"

Image = Callable[[str], Path]


def qemu_pids_under(folder: Path) -> list[int]:
    """QEMU processes whose command line mentions `folder` (what a test started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"qemu-system" in cmdline and str(folder).encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def fixture_args(efi: Path, mode_file: Path, logs: Path) -> list[str]:
    return ["--target=qemu-tcg", f"--bm-boards={ROOT / 'boards'}", f"--bm-efi={efi}",
            f"--bm-file=mode.txt={mode_file}", f"--bm-profile={FIXTURE_PROFILE}",
            f"--bm-logs={logs}", "-p", "no:cacheprovider"]


@pytest.fixture
def fixture_run(pytester: pytest.Pytester, fixture_efi: Path) -> Callable[..., pytest.RunResult]:
    """Runs a test file against the fixture guest in a given mode."""

    def run(mode: str, source: str, *extra: str, timeout: float = 120) -> pytest.RunResult:
        mode_file = pytester.path / "mode.txt"
        mode_file.write_text(mode + "\n")
        pytester.makepyfile(test_guest=source)
        logs = pytester.path / "logs"
        result = pytester.runpytest_subprocess(
            *fixture_args(fixture_efi, mode_file, logs), *extra, timeout=timeout)
        assert qemu_pids_under(pytester.path) == [], "a QEMU outlived the pytest run"
        return result

    return run


def test_unknown_target_names_the_boards(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(dut): pass")
    result = pytester.runpytest_subprocess("--target=nope", f"--bm-boards={ROOT / 'boards'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--target nope: no board file nope.yaml*qemu-tcg*"])


def test_board_typo_names_file_key_and_suggestion(pytester: pytest.Pytester) -> None:
    boards = pytester.mkdir("myboards")
    (boards / "bad.yaml").write_text("kind: qemu\naccel: tcg\ncpu: max\nmemroy: 512\n")
    pytester.makepyfile("def test_x(dut): pass")
    result = pytester.runpytest_subprocess("--target=bad", f"--bm-boards={boards}")
    assert result.ret != 0
    text = result.stdout.str() + result.stderr.str()
    assert "bad.yaml" in text and "memroy" in text and "memory" in text, text


def test_no_target_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(dut): pass")
    result = pytester.runpytest_subprocess("-rs", f"--bm-boards={ROOT / 'boards'}",
                                           "-o", "bm_targets=")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*pass --target BOARD*"])


def test_events_from_a_custom_profile(fixture_run: Callable[..., pytest.RunResult]) -> None:
    source = """
        def test_lines(dut):
            assert dut.event("boot").fields["mode"] == "lines 4"
            assert [e.fields["n"] for e in dut.events("line")] == [1, 2, 3, 4]
            assert dut.event("line", n=3).fields["total"] == 4
            assert dut.wait_power_off() == 0

        def test_same_boot_is_shared(dut, bm_session):
            assert bm_session.pool.boot_count == 1
    """
    result = fixture_run("lines 4", source)
    result.assert_outcomes(passed=2)


def test_a_hang_fails_within_its_bound_with_the_log_tail(
        fixture_run: Callable[..., pytest.RunResult]) -> None:
    source = """
        def test_hang(dut):
            dut.event("done", timeout=4)
    """
    start = time.monotonic()
    result = fixture_run("hang", source)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ExpectTimeout*", "*[[]fixture[]] hanging*",
                                 "*console.log*"])
    assert time.monotonic() - start < 60


def test_a_crash_fails_at_once_with_the_exception_dump(
        fixture_run: Callable[..., pytest.RunResult]) -> None:
    source = """
        import time
        def test_crash(dut):
            start = time.monotonic()
            try:
                dut.event("done", timeout=60)
            finally:
                print(f"waited {time.monotonic() - start:.1f} s")
    """
    result = fixture_run("crash", source, "-s")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*DeathStringSeen*", "*X64 Exception Type*"])
    waited = [float(m.group(1)) for line in result.stdout.lines
              if (m := re.search(r"waited ([\d.]+) s", line))]
    assert waited and waited[0] < 30, result.stdout.str()


def test_qemu_dying_mid_boot_is_reported(fixture_run: Callable[..., pytest.RunResult]) -> None:
    source = """
        import os, signal
        def test_killed(dut):
            dut.event("boot", timeout=30)
            os.kill(dut.power.process.pid, signal.SIGKILL)
            dut.event("done", timeout=30)
    """
    result = fixture_run("hang", source)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ConsoleClosed*"])


def test_a_failed_boot_does_not_cascade(pytester: pytest.Pytester, fixture_efi: Path) -> None:
    boards = pytester.mkdir("boards")
    (boards / "broken.yaml").write_text(
        "kind: qemu\naccel: tcg\ncpu: max\nextra_args: [-device, no-such-device]\n")
    pytester.makepyfile(test_guest="""
        def test_one(dut): pass
        def test_two(dut): pass
        def test_three(dut): pass
    """)
    mode = pytester.path / "mode.txt"
    mode.write_text("lines 1\n")
    start = time.monotonic()
    result = pytester.runpytest_subprocess(
        "--target=broken", f"--bm-boards={boards}", f"--bm-efi={fixture_efi}",
        f"--bm-file=mode.txt={mode}", f"--bm-profile={FIXTURE_PROFILE}",
        f"--bm-logs={pytester.path / 'logs'}")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*no-such-device*", "*failed earlier*"])
    assert time.monotonic() - start < 60
    assert len(list((pytester.path / "logs").glob("latest/*broken*"))) == 1, "booted more than once"


def test_ctrl_c_during_a_boot_leaves_no_qemu(pytester: pytest.Pytester, fixture_efi: Path) -> None:
    mode = pytester.path / "mode.txt"
    mode.write_text("hang\n")
    pytester.makepyfile(test_guest="def test_wait(dut):\n    dut.event('done', timeout=120)\n")
    argv = [sys.executable, "-m", "pytest", *fixture_args(fixture_efi, mode,
                                                          pytester.path / "logs")]
    proc = subprocess.Popen(argv, cwd=pytester.path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not qemu_pids_under(pytester.path) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert qemu_pids_under(pytester.path), "QEMU never started"
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert b"KeyboardInterrupt" in out, out.decode(errors="replace")
    deadline = time.monotonic() + 10
    while qemu_pids_under(pytester.path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert qemu_pids_under(pytester.path) == []


def test_board_override_and_its_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_b="def test_cpu(board):\n    assert board.spec.cpu == 'qemu64'\n")
    ok = pytester.runpytest_subprocess("--target=qemu-tcg", f"--bm-boards={ROOT / 'boards'}",
                                       "--bm-set", "cpu=qemu64")
    ok.assert_outcomes(passed=1)
    bad = pytester.runpytest_subprocess("--target=qemu-tcg", f"--bm-boards={ROOT / 'boards'}",
                                        "--bm-set", "machine=isapc")
    assert bad.ret != 0
    text = bad.stdout.str() + bad.stderr.str()
    assert "machine" in text and "isapc" in text and "q35" in text, text


def test_a_quiet_guest_is_called_hung_before_the_test_timeout(
        fixture_run: Callable[..., pytest.RunResult]) -> None:
    source = """
        import time
        def test_hang(dut):
            start = time.monotonic()
            try:
                dut.event("done", timeout=300)
            finally:
                print(f"waited {time.monotonic() - start:.1f} s")
    """
    result = fixture_run("hang", source, "-s", "--bm-set", "timeouts.quiet=3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the guest went quiet: no console output for 3 s*"])
    waited = [float(m.group(1)) for line in result.stdout.lines
              if (m := re.search(r"waited ([\d.]+) s", line))]
    assert waited and waited[0] < 60, result.stdout.str()


def _image_args(image: Path, logs: Path, *extra: str) -> list[str]:
    return ["--target=qemu-tcg", f"--bm-boards={ROOT / 'boards'}", f"--bm-image={image}",
            f"--bm-profile={FIXTURE_PROFILE}", f"--bm-logs={logs}", "-p", "no:cacheprovider",
            *extra]


def test_a_ready_image_boots_and_function_scope_reboots(
        pytester: pytest.Pytester, fixture_image: Image) -> None:
    pytester.makepyfile(test_img="""
        def test_first(dut):
            assert dut.event("line", n=2).fields["total"] == 2

        def test_second(dut, bm_session):
            assert dut.event("done") is not None
            assert bm_session.pool.boot_count == 2
    """)
    result = pytester.runpytest_subprocess(
        *_image_args(fixture_image("lines 2"), pytester.path / "logs",
                     "--bm-dut-scope=function"), timeout=180)
    result.assert_outcomes(passed=2)
    assert qemu_pids_under(pytester.path) == []


def test_a_missing_image_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(dut): pass")
    result = pytester.runpytest_subprocess(
        *_image_args(pytester.path / "nope.img", pytester.path / "logs"))
    text = result.stdout.str() + result.stderr.str()
    assert result.ret != 0 and "nope.img does not exist" in text, text


def test_a_corrupt_image_fails_with_the_firmware_output(pytester: pytest.Pytester) -> None:
    corrupt = pytester.path / "corrupt.img"
    corrupt.write_bytes(bytes(range(256)) * 4096 * 4)  # 4 MiB of non-disk bytes
    pytester.makepyfile("def test_x(dut):\n    dut.event('done', timeout=300)\n")
    result = pytester.runpytest_subprocess(
        *_image_args(corrupt, pytester.path / "logs", "--bm-set", "timeouts.quiet=15"),
        timeout=300)
    result.assert_outcomes(errors=1)  # the boot fails, with the firmware's own words
    result.stdout.fnmatch_lines(["*ImageError*the firmware could not boot this build: "
                                 "BdsDxe: failed to load Boot0001*Not Found*"])
    assert qemu_pids_under(pytester.path) == []

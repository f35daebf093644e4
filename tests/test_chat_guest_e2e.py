"""End to end: the shipped suites against a build that was not written for this plugin.

The fixture guest's chat mode behaves like the seeds' interactive llama2 UEFI build: REPL
only, a `You: ` prompt without newline, CR-terminated input, `AI: ` answers with a
diagnostic line inside, a `[stats]` line (tok/s is `inf` from a 1-second clock), and its own
words for the CPU (`SGEMM kernel: AVX2+FMA (...)`). With its profile
(tests/fixture_guest/chat.yaml) every suite test passes or skips with a reason, and no wait
runs into a timeout."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "tests" / "fixture_guest" / "chat.yaml"

pytestmark = pytest.mark.slow


def test_suites_pass_or_skip_on_the_chat_guest(pytester: pytest.Pytester,
                                                fixture_efi: Path) -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (bash scripts/setup.sh)")
    mode = pytester.path / "mode.txt"
    mode.write_text("chat\n")
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        str(ROOT / "suites"), f"--rootdir={ROOT}", "-c", str(ROOT / "pyproject.toml"),
        "--target=qemu-tcg", f"--bm-efi={fixture_efi}", f"--bm-file=mode.txt={mode}",
        f"--bm-profile={PROFILE}", f"--bm-logs={pytester.path / 'logs'}",
        f"--bm-history={pytester.path / 'history.sqlite'}", f"--junitxml={junit}",
        "-p", "no:cacheprovider", "-rs", "-v", timeout=600)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    out = result.stdout.str()
    for passed in ("test_banner_names_the_build", "test_firmware_handed_over",
                   "test_run_ends_cleanly", "test_no_output_lost_before_the_banner",
                   "test_avx2_kernel_chosen", "test_generation_is_delimited_and_counted",
                   "test_answers_prompts_one_after_another",
                   "test_quit_shuts_down"):
        assert f"{passed}[qemu-tcg] PASSED" in out, passed
    # skips name what the profile lacks, down to the field
    result.stdout.fnmatch_lines([
        "*event cpu has no field xsave*",
        "*has no event bench*",
        "*the build is interactive (repl)*does not end its run by itself*",
    ])
    # no wait ran into the 120 s hang detection or a run timeout: every test is quick
    durations = {case.get("name"): float(case.get("time", "0"))
                 for case in ET.parse(junit).iter("testcase")}
    slow = {name: t for name, t in durations.items() if t > 60}
    assert not slow, slow
    # two prompts, then a configuration change (the REPL boot is powered off at once)
    logs = sorted((pytester.path / "logs").glob("latest/*/1-tcg/*.console.txt"))
    assert len(logs) == 2, logs
    transcript = logs[1].read_text()
    assert "You: Once upon a time\nAI: " in transcript
    assert transcript.count("[stats] tokens=24") == 3  # two answers, then "One more"
    assert "You: /quit\nBye." in transcript

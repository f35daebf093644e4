"""End to end: the shipped suites, run as a user runs them, against the real reference guest
booted under QEMU. These are the slow tests; each target boots a handful of times."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def run_suites(pytester: pytest.Pytester, *args: str, timeout: float = 900) -> pytest.RunResult:
    """Runs `suites/` from the repository with its config, logs and history kept in tmp."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (bash scripts/setup.sh)")
    return pytester.runpytest_subprocess(
        str(ROOT / "suites"), f"--rootdir={ROOT}", "-c", str(ROOT / "pyproject.toml"),
        f"--bm-logs={pytester.path / 'logs'}",
        f"--bm-history={pytester.path / 'history.sqlite'}",
        f"--junitxml={pytester.path / 'junit.xml'}",
        "-p", "no:cacheprovider", "-rs", *args, timeout=timeout)


def properties(junit: Path) -> dict[str, dict[str, str]]:
    tree = ET.parse(junit)
    out: dict[str, dict[str, str]] = {}
    for case in tree.iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        out[f"{case.get('classname')}.{case.get('name')}"] = props
    return out


def test_avx_and_portable_boards_pass_under_xdist(pytester: pytest.Pytester) -> None:
    """qemu-tcg (AVX2+FMA) and qemu-tcg-noavx (portable) pass, one QEMU per worker.

    The network suite (five boots a board, its path independent of the CPU model) runs on
    qemu-tcg only: the same coverage for a third less time."""
    result = run_suites(pytester, "--target=qemu-tcg", "--target=qemu-tcg-noavx", "-n", "2",
                        "-k", "not (test_network and noavx)")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 60, outcomes
    # The AVX-only tests ran on one board and were skipped with the reason on the other.
    result.stdout.fnmatch_lines(["*board qemu-tcg-noavx lacks feature avx2*"])
    props = properties(pytester.path / "junit.xml")
    tok_s = [float(p["decode_tok_s"]) for p in props.values() if "decode_tok_s" in p]
    assert len(tok_s) == 2 and all(v > 0 for v in tok_s), props
    logs = list((pytester.path / "logs").glob("*/*/1-tcg/*.console.log"))
    assert len(logs) >= 4, logs  # default, sampled and portable-kernel boots per board


def test_kvm_board_falls_back_to_tcg_and_says_why(pytester: pytest.Pytester) -> None:
    if not Path("/dev/kvm").exists():
        pytest.skip("/dev/kvm is absent: the KVM failure cannot be reproduced here")
    result = run_suites(pytester, "--target=qemu-kvm", "-k", "boot or avx",
                        "--bm-logs", str(pytester.path / "logs"))
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    props = properties(pytester.path / "junit.xml")
    fallbacks = {p.get("bm_fallback") for p in props.values() if "bm_accelerator" in p}
    accels = {p.get("bm_accelerator") for p in props.values() if "bm_accelerator" in p}
    assert accels == {"tcg"}, accels
    assert any(f and "kvm" in f for f in fallbacks), fallbacks


def test_no_fallback_turns_the_kvm_failure_into_a_clear_error(pytester: pytest.Pytester) -> None:
    if not Path("/dev/kvm").exists():
        pytest.skip("/dev/kvm is absent: the KVM failure cannot be reproduced here")
    result = run_suites(pytester, "--target=qemu-kvm", "--bm-no-fallback", "-k", "banner_names")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*kvm could not boot the guest*--bm-no-fallback*"])


def test_simulated_skylake_box_passes_the_suites(pytester: pytest.Pytester) -> None:
    """The physical path end to end: relay frames power the simulated box, its console is a
    pty opened with pyserial, and it boots over PXE."""
    result = run_suites(pytester, "--target=sim-skylake", timeout=1200)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes.get("passed", 0) >= 30, outcomes
    infos = list((pytester.path / "logs").glob("latest/*sim-skylake*/boot-info.txt"))
    assert infos, "no boot-info.txt for the simulated box"
    assert "pxe" in infos[0].read_text().lower(), infos[0].read_text()

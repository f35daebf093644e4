"""The README's code blocks that are tests or profiles are run: a profile must load, a test
file must pass against the reference guest booted under QEMU TCG."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pytest_baremetal.markers import load_profile

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(lang: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(README.read_text()) if m["lang"] == lang]


def profile_blocks() -> list[str]:
    return [b for b in blocks("yaml") if re.search(r"^events:", b, re.MULTILINE)]


def test_block_extraction_finds_the_examples() -> None:
    assert profile_blocks(), "no profile example found in the README"
    assert [b for b in blocks("python") if "def test_" in b], "no test example in the README"


@pytest.mark.parametrize("index", range(len(profile_blocks())))
def test_readme_profiles_load(index: int, tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(profile_blocks()[index])
    profile = load_profile(path)
    assert profile.provides("boot"), "the README's profile has no boot event"


@pytest.mark.slow
def test_readme_tests_pass_on_the_reference_guest(pytester: pytest.Pytester) -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    sources = [b for b in blocks("python") if "def test_" in b]
    for number, source in enumerate(sources):
        pytester.makepyfile(**{f"test_readme_{number}": source})
    expected = sum(len(re.findall(r"^def test_", s, re.MULTILINE)) for s in sources)
    result = pytester.runpytest_subprocess(
        "--target=qemu-tcg", f"--bm-logs={pytester.path / 'logs'}",
        f"--bm-history={pytester.path / 'history.sqlite'}", "-p", "no:cacheprovider", "-rs",
        timeout=900)
    assert result.ret == 0, result.stdout.str()[-4000:]
    result.assert_outcomes(passed=expected)

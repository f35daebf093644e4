"""The built wheel alone, in a fresh virtual environment, in folders outside the repository:
what a user gets from `pip install pytest-baremetal`.

One venv serves every test (pip installs from the local index/cache). The tests run
pytest from that venv with a working directory that holds nothing of this checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PROFILE = ROOT / "tests" / "data" / "fixture-profile.yaml"

pytestmark = pytest.mark.slow


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "PYTHON")) and k != "VIRTUAL_ENV"}
    return env


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv with only the wheel (and its dependencies) installed; yields its bin folder."""
    for tool in ("qemu-system-x86_64", "make", "gcc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (bash scripts/setup.sh)")
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    build = subprocess.run(["bash", str(ROOT / "scripts" / "build-wheel.sh")],
                           env={**os.environ, "DIST": str(dist)}, capture_output=True,
                           text=True, timeout=600, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = list(dist.glob("pytest_baremetal-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / ("Scripts" if sys.platform == "win32" else "bin")
    install = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q",
                              str(wheels[0])], capture_output=True, text=True, timeout=600,
                             env=_clean_env(), check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    yield bin_dir


def _pytest(bin_dir: Path, cwd: Path, *args: str, timeout: float = 1500
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "pytest"), "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=_clean_env(),
                          check=False)


def test_the_wheel_carries_boards_guest_and_suites(wheel_venv: Path, tmp_path: Path) -> None:
    probe = subprocess.run(
        [str(wheel_venv / "python"), "-c",
         "from pytest_baremetal import resources as r; "
         "print(r.packaged_boards()); print(r.reference_guest_location()); "
         "print(r.bundled_suites())"],
        cwd=tmp_path, capture_output=True, text=True, env=_clean_env(), check=True)
    boards, guest, suites = probe.stdout.splitlines()
    assert "site-packages" in boards and str(ROOT) not in probe.stdout, probe.stdout
    assert "site-packages" in guest and "source=None" in guest, guest
    assert suites.endswith("pytest_baremetal/suites"), suites
    listing = subprocess.run([str(wheel_venv / "pytest-baremetal"), "boards"], cwd=tmp_path,
                             capture_output=True, text=True, env=_clean_env(), check=False)
    assert listing.returncode == 0, listing.stderr
    for name in ("qemu-tcg", "qemu-tcg-noavx", "qemu-tcg-icount", "qemu-q35", "qemu-kvm",
                 "qemu-whpx"):
        assert name in listing.stdout, listing.stdout
    assert "sim-skylake" not in listing.stdout
    demo = subprocess.run([str(wheel_venv / "pytest-baremetal"), "demo", "--co", "-q",
                           "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True,
                          text=True, env=_clean_env(), check=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "test_boot.py::test_banner_names_the_build[qemu-tcg]" in demo.stdout, demo.stdout


def test_bundled_suites_pass_on_qemu_tcg_from_an_empty_folder(wheel_venv: Path,
                                                              tmp_path: Path) -> None:
    result = _pytest(wheel_venv, tmp_path, "--pyargs", "pytest_baremetal.suites",
                     "--target=qemu-tcg", "-rs", "-q")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout
    logs = list((tmp_path / "reports" / "logs").glob("*/*/*/*.console.log"))
    assert logs, "the console logs are not under the folder pytest ran in"


def test_a_user_build_with_its_own_profile(wheel_venv: Path, tmp_path: Path,
                                           fixture_efi: Path) -> None:
    """A second guest (tests/fixture_guest) with its own profile and a user test."""
    project = tmp_path / "user-repo"
    (project / "tests").mkdir(parents=True)
    shutil.copy(fixture_efi, project / "app.efi")
    shutil.copy(FIXTURE_PROFILE, project / "profile.yaml")
    (project / "mode.txt").write_text("lines 4\n")
    (project / "pytest.ini").write_text(
        "[pytest]\nbm_efi = app.efi\nbm_files = mode.txt=mode.txt\nbm_profile = profile.yaml\n")
    (project / "tests" / "test_mine.py").write_text(
        "def test_counts_to_four(dut):\n"
        "    assert dut.event('boot').fields['mode'] == 'lines 4'\n"
        "    assert dut.event('line', n=4).fields['total'] == 4\n"
        "    dut.wait_done()\n")
    result = _pytest(wheel_venv, project / "tests", "--bm-efi", "../app.efi",
                     "--target=qemu-tcg", "-v")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "test_counts_to_four[qemu-tcg] PASSED" in result.stdout, result.stdout


def test_beside_pytest_embedded_bm_target_works(wheel_venv: Path, tmp_path: Path) -> None:
    install = subprocess.run([str(wheel_venv / "python"), "-m", "pip", "install", "-q",
                              "pytest-embedded"], capture_output=True, text=True, timeout=600,
                             env=_clean_env(), check=False)
    if install.returncode != 0:
        pytest.skip(f"pytest-embedded could not be installed: {install.stderr[-500:]}")
    helped = _pytest(wheel_venv, tmp_path, "--help")
    assert helped.returncode == 0, helped.stderr
    assert "--bm-target" in helped.stdout and "serial target chip type" in helped.stdout
    result = _pytest(wheel_venv, tmp_path, "--pyargs", "pytest_baremetal.suites",
                     "--bm-target=qemu-tcg", "-k", "test_boot", "-v")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "--target belongs to" in result.stdout, result.stdout[:2000]
    assert "test_banner_names_the_build[qemu-tcg] PASSED" in result.stdout, result.stdout
    assert " failed" not in result.stdout and " error" not in result.stdout, result.stdout

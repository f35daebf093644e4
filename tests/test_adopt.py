"""Adoption: the plugin in someone else's project. Paths resolve from the ini file's folder,
boards ship with the plugin and a project's own add to them, `--target` yields to another
plugin that owns it, a project's own `board` fixture is left alone, and `init` gives a user
with only an .efi a green first test.

Each test runs pytest in a subprocess (pytester) so the plugin loads from its entry point.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_baremetal import doctor, projectini, resources
from pytest_baremetal.scaffold import InitRequest, write_project

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_PROFILE = ROOT / "tests" / "data" / "fixture-profile.yaml"

# A stand-in for pytest-embedded's option set (its real plugin is tested in
# tests/test_wheel.py): a plugin that owns --target.
OTHER_PLUGIN = """
def pytest_addoption(parser):
    parser.getgroup("embedded").addoption("--target", default="esp32", help="chip")
"""


def qemu_available() -> None:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")


# -- paths --------------------------------------------------------------------------------

def test_boards_dir_in_space_form_keeps_rootdir_and_tests(pytester: pytest.Pytester) -> None:
    """`--bm-boards ../shared` is not a test path: the ini file, rootdir and testpaths stay."""
    project = pytester.mkdir("project")
    shared = pytester.mkdir("shared")
    shutil.copy(ROOT / "boards" / "qemu-tcg.yaml", shared / "mine.yaml")
    (project / "pytest.ini").write_text(
        "[pytest]\ntestpaths = tests\naddopts = -p no:cacheprovider\n")
    (project / "tests").mkdir()
    (project / "tests" / "test_a.py").write_text(
        "def test_a(board):\n    assert board.name == 'mine'\n")
    (project / "other").mkdir()
    (project / "other" / "test_other.py").write_text("def test_other():\n    pass\n")
    (pytester.path / "test_outside.py").write_text("def test_outside():\n    pass\n")
    result = _run_in(pytester, project, "--bm-boards", "../shared", "--target", "mine", "--co",
                     "-q")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    out = result.stdout.str()
    assert "tests/test_a.py::test_a[mine]" in out, out
    assert "test_other" not in out and "test_outside" not in out, out
    verbose = _run_in(pytester, project, "--bm-boards", "../shared", "--target", "mine", "--co")
    assert f"rootdir: {project}" in verbose.stdout.str(), verbose.stdout.str()


def _run_in(pytester: pytest.Pytester, folder: Path, *args: str,
            timeout: float = 300) -> pytest.RunResult:
    """pytest in a subprocess whose working directory is `folder`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        return pytester.runpytest_subprocess(*args, timeout=timeout)


def test_paths_resolve_from_the_ini_folder_not_the_invocation_dir(
        pytester: pytest.Pytester) -> None:
    project = pytester.mkdir("project")
    (project / "boards").mkdir()
    shutil.copy(ROOT / "boards" / "qemu-tcg.yaml", project / "boards" / "own.yaml")
    (project / "pytest.ini").write_text("[pytest]\nbm_profile = profiles/p.yaml\n"
                                        "bm_targets = own\n")
    (project / "profiles").mkdir()
    (project / "profiles" / "p.yaml").write_text("name: mine\nevents: {}\n")
    sub = project / "tests"
    sub.mkdir()
    (sub / "test_where.py").write_text(
        "def test_where(bm_session, board):\n"
        "    s = bm_session.settings\n"
        "    print('ROOT', s.root, 'LOGS', s.log_dir, 'PROFILE', s.profile, 'BOARD', board.path)\n")
    result = _run_in(pytester, sub, "-s", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([f"*ROOT {project} LOGS {project}/reports/logs PROFILE "
                                 f"{project}/profiles/p.yaml BOARD {project}/boards/own.yaml*"])


def test_packaged_boards_without_any_boards_folder(pytester: pytest.Pytester) -> None:
    """An empty project sees the QEMU boards that ship with the plugin."""
    pytester.makeini("[pytest]\n")
    pytester.makepyfile("def test_x(board):\n    print('BOARD', board.path)\n")
    result = pytester.runpytest_subprocess("--target=qemu-tcg-noavx", "-s",
                                           "-p", "no:cacheprovider")
    assert result.ret == 0, result.stderr.str()
    packaged = resources.packaged_boards()
    assert packaged is not None
    result.stdout.fnmatch_lines([f"*BOARD {packaged / 'qemu-tcg-noavx.yaml'}"])


def test_a_missing_board_names_bm_boards(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile("def test_x(dut): pass")
    result = pytester.runpytest_subprocess("--target=my-lab-box")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no board file my-lab-box.yaml*--bm-boards DIR*"])


def test_boards_command_honours_bm_boards_from_the_ini(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lab").mkdir()
    shutil.copy(ROOT / "boards" / "qemu-tcg.yaml", tmp_path / "lab" / "box-under-desk.yaml")
    (tmp_path / "pytest.ini").write_text("[pytest]\nbm_boards = lab\n")
    (tmp_path / "deeper").mkdir()
    monkeypatch.chdir(tmp_path / "deeper")
    dirs = projectini.board_dirs(tmp_path / "deeper", [])
    assert dirs[0] == tmp_path / "lab" and dirs[1] == tmp_path / "boards"
    result = subprocess.run([sys.executable, "-m", "pytest_baremetal", "boards"],
                            capture_output=True, text=True, cwd=tmp_path / "deeper",
                            env={**_env(), "PYTHONPATH": str(ROOT)}, check=False)
    assert result.returncode == 0, result.stderr
    assert "box-under-desk" in result.stdout and "qemu-tcg-noavx" in result.stdout


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_ini_found_like_pytest_finds_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")  # no pytest section
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "tox.ini").write_text("[tox]\n")  # no [pytest]: skipped
    assert projectini.find(tmp_path / "a") == (None, {})
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\nbm_boards = ['x', 'y']\n")
    path, section = projectini.find(tmp_path / "a")
    assert path == tmp_path / "pyproject.toml" and section["bm_boards"] == ["x", "y"]
    assert projectini.board_dirs(tmp_path / "a", [])[:2] == [tmp_path / "x", tmp_path / "y"]


def test_demo_collects_the_bundled_suites_from_an_empty_folder(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pytest_baremetal", "demo", "--co", "-q",
                             "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True,
                            text=True, env={**_env(), "PYTHONPATH": str(ROOT)}, check=False,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_boot.py::test_banner_names_the_build[qemu-tcg]" in result.stdout, result.stdout


# -- good neighbour -----------------------------------------------------------------------

@pytest.mark.parametrize("order", ["other-first", "baremetal-first"])
def test_another_plugin_owning_target_keeps_pytest_starting(pytester: pytest.Pytester,
                                                            order: str) -> None:
    pytester.makepyfile(other_plugin=OTHER_PLUGIN)
    pytester.makepyfile("def test_x(board, request):\n"
                        "    print('BOARD', board.name, 'OTHER', request.config.option.target)\n")
    plugins = ["-p", "other_plugin", "-p", "pytest_baremetal.plugin"]
    if order == "baremetal-first":
        plugins = plugins[2:] + plugins[:2]
    result = pytester.runpytest_subprocess(
        "-p", "no:baremetal", *plugins, "--bm-target=qemu-tcg", "--target=esp32s3", "-s",
        "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*--target belongs to embedded; choose boards with --bm-target*",
                                 "*BOARD qemu-tcg OTHER esp32s3*"])


def test_target_is_ours_when_free(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(board):\n    print('BOARD', board.name)\n")
    result = pytester.runpytest_subprocess("--target", "qemu-tcg", "--bm-target=qemu-q35",
                                           "-s", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["*BOARD qemu-tcg*", "*BOARD qemu-q35*"])  # --target first
    assert "--target belongs" not in result.stdout.str()


def test_a_project_with_its_own_board_fixture_is_untouched(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("""
        import pytest

        @pytest.fixture(params=["uno", "mega"])
        def board(request):
            return request.param
    """)
    pytester.makepyfile("def test_blink(board):\n    assert board in ('uno', 'mega')\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest_subprocess("--target=qemu-tcg", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_blink?uno? PASSED*", "*test_blink?mega? PASSED*"])


# -- init ---------------------------------------------------------------------------------

def test_init_writes_a_project_and_keeps_existing_files(tmp_path: Path) -> None:
    out = io.StringIO()
    written = write_project(InitRequest(folder=tmp_path, boards=True), out)
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert {"pytest.ini", "profiles/my-build.yaml", "tests/test_first_boot.py",
            "boards/qemu-tcg.yaml"} <= names
    from pytest_baremetal.markers import load_profile

    profile = load_profile(tmp_path / "profiles" / "my-build.yaml")
    assert profile.provides("boot") and profile.provides("loader")
    (tmp_path / "pytest.ini").write_text("[pytest]\n# mine\n")
    again = write_project(InitRequest(folder=tmp_path), io.StringIO())
    assert again == [] and (tmp_path / "pytest.ini").read_text() == "[pytest]\n# mine\n"


def test_init_refuses_a_missing_efi_and_a_bad_banner(tmp_path: Path) -> None:
    from pytest_baremetal.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--efi .*nope\.efi: no such file"):
        write_project(InitRequest(folder=tmp_path, efi=tmp_path / "nope.efi"), io.StringIO())
    with pytest.raises(ConfigError, match=r"--banner '\(': not a regex"):
        write_project(InitRequest(folder=tmp_path, banner="("), io.StringIO())
    assert not (tmp_path / "pytest.ini").exists()


@pytest.mark.slow
def test_a_user_with_only_an_efi_gets_a_green_first_test(pytester: pytest.Pytester,
                                                         fixture_efi: Path) -> None:
    """`pytest-baremetal init --efi app.efi`, then `pytest`: the starter tests pass."""
    qemu_available()
    project = pytester.mkdir("their-repo")
    (project / "build").mkdir()
    efi = shutil.copy(fixture_efi, project / "build" / "app.efi")
    (project / "mode.txt").write_text("lines 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest_baremetal", "init", str(project), "--efi", str(efi),
         "--file", f"mode.txt={project / 'mode.txt'}"],
        capture_output=True, text=True, env={**_env(), "PYTHONPATH": str(ROOT)}, check=False)
    assert result.returncode == 0, result.stderr
    assert "bm_efi = build/app.efi" in (project / "pytest.ini").read_text()
    run = _run_in(pytester, project, "-p", "no:cacheprovider", "-v")
    assert run.ret == 0, run.stdout.str() + run.stderr.str()
    run.stdout.fnmatch_lines(["*test_firmware_starts_the_build?qemu-tcg? PASSED*",
                              "*test_build_prints_its_banner?qemu-tcg? PASSED*"])
    assert list((project / "reports" / "logs").glob("*/*/*/*.console.log")), "logs elsewhere"


# -- doctor ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("release", "label"), [
    ('ID=debian\n', "Debian/Ubuntu"), ('ID=linuxmint\nID_LIKE="ubuntu debian"\n', "Debian/Ubuntu"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "Fedora"), ("ID=arch\n", "Arch"),
    ("ID=alpine\n", "Linux")])
def test_doctor_names_the_linux_distribution(tmp_path: Path, release: str, label: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    (tmp_path / "os-release").write_text(release)
    assert doctor.host_platform(tmp_path / "os-release") == label


def test_doctor_fixes_for_windows_and_no_mtools(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Windows path by mocks: winget for QEMU, the QEMU installer's OVMF, no mtools."""
    from pytest_baremetal.errors import ConfigError

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(doctor, "qemu_binary", lambda: (_ for _ in ()).throw(
        ConfigError("qemu-system-x86_64 not found")))
    monkeypatch.setattr(doctor, "find_firmware", lambda: (_ for _ in ()).throw(
        ConfigError("no OVMF")))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    out = io.StringIO()
    assert doctor.run_doctor(out, boot_accelerators=False) == 1
    text = out.getvalue()
    assert "winget install SoftwareFreedomConservancy.QEMU" in text, text
    assert "edk2-x86_64-code.fd" in text and "apt-get" not in text, text
    assert "mtools" not in text, text
    assert "accel whpx" in text and "accel kvm" not in text, text


def test_an_empty_folder_says_where_the_suites_are(pytester: pytest.Pytester) -> None:
    """`pytest --target=qemu-tcg` in a folder without tests (a fresh pip install) says how
    to run the bundled suites instead of only "no tests ran"; with tests, no such line."""
    result = pytester.runpytest_subprocess("--target=qemu-tcg", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines([
        "no tests collected for --target qemu-tcg*",
        "*pytest --pyargs pytest_baremetal.suites --target=qemu-tcg",
        "*pytest-baremetal init --efi*"])
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--target=qemu-tcg", "-p", "no:cacheprovider")
    assert result.ret == 0
    assert "pytest_baremetal.suites" not in result.stdout.str()
    result = pytester.runpytest_subprocess("-k", "nothing", "-p", "no:cacheprovider")
    assert "pytest_baremetal.suites" not in result.stdout.str()  # no board chosen: silent

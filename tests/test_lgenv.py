"""`--lg-env`: a lab's labgrid environment file becomes boards, read with labgrid's own parser
(templates included), mapped onto the physical board schema and validated by it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_baremetal.boards import load_board
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.targets.physical.lgenv import write_boards
from pytest_baremetal.targets.physical.schema import PhysicalSpec

pytest.importorskip("labgrid")
ROOT = Path(__file__).resolve().parents[1]

ENV = """\
targets:
  skylake-1:
    resources:
      USBSerialPort:
        match: {ID_SERIAL_SHORT: A10K9ZQ3}
        speed: 115200
      NetworkPowerPort: {model: gude, host: pdu.lab, index: 3}
    drivers:
      SerialDriver: {}
      NetworkPowerDriver: {delay: 2.0}
    options: {bm_write_to: /dev/disk/by-id/usb-stick}
  bench-pc:
    resources:
      - RawSerialPort: {port: !template '$BASE/ttyS9', speed: 57600}
    drivers:
      - ExternalPowerDriver: {cmd_on: 'relay on 2', cmd_off: 'relay off 2'}
"""


def test_targets_become_validated_boards(tmp_path: Path) -> None:
    env = tmp_path / "lab.yaml"
    env.write_text(ENV)
    folder = write_boards(env, tmp_path / "boards")
    sky = load_board(folder / "skylake-1.yaml")
    assert sky.kind == "physical" and isinstance(sky.spec, PhysicalSpec)
    assert sky.spec.console.port.udev == (("ID_SERIAL_SHORT", "A10K9ZQ3"),)
    assert sky.source["physical"]["console"] == {"udev": {"ID_SERIAL_SHORT": "A10K9ZQ3"},
                                                 "baud": 115200}
    assert sky.source["physical"]["power"]["labgrid"] == {
        "driver": "NetworkPowerDriver", "args": {"delay": 2.0},
        "resource": "NetworkPowerPort",
        "resource_args": {"model": "gude", "host": "pdu.lab", "index": 3}}
    assert sky.source["physical"]["boot"] == {"disk": {"write_to": "/dev/disk/by-id/usb-stick"}}
    bench = load_board(folder / "bench-pc.yaml")
    assert isinstance(bench.spec, PhysicalSpec)
    assert bench.source["physical"]["console"] == {"device": str(tmp_path / "ttyS9"), "baud": 57600}
    assert bench.source["physical"]["power"]["labgrid"]["driver"] == "ExternalPowerDriver"
    assert "resource" not in bench.source["physical"]["power"]["labgrid"]
    assert bench.source["physical"]["boot"] == "disk"


def test_a_target_without_a_console_is_named(tmp_path: Path) -> None:
    env = tmp_path / "lab.yaml"
    env.write_text("targets:\n  mute:\n    drivers: {ManualPowerDriver: {}}\n")
    with pytest.raises(ConfigError, match=r"targets\.mute.*no serial resource"):
        write_boards(env, tmp_path / "boards")


def test_lg_env_boards_are_selectable(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", lab=ENV)
    pytester.makepyfile("def test_x(board):\n    pass\n")
    result = pytester.runpytest_subprocess("--lg-env", "lab.yaml", "--target", "bench-pc",
                                           "--co", "-q", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*test_x?bench-pc?*"])


LAB_BOX = """\
targets:
  lg-box:
    resources:
      RawSerialPort: {{port: '{run}/console', speed: 115200}}
    drivers:
      SerialDriver: {{}}
      ExternalPowerDriver:
        cmd_on: '{python} -m pytest_baremetal.targets.physical.lcus {run}/relay 1 on --query'
        cmd_off: '{python} -m pytest_baremetal.targets.physical.lcus {run}/relay 1 off'
    options: {{bm_write_to: '{run}/disk.img'}}
"""


@pytest.fixture
def sim_box(tmp_path: Path) -> Iterator[Path]:
    """The simulated Skylake box started by hand, as a lab's box is there before the run:
    a pty console, an LCUS relay on a pty, a disk image file; booting from that disk."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed")
    pytest.importorskip("serial")
    run = Path(os.environ.get("TMPDIR", "/tmp")) / f"bm-lgbox-{os.getpid()}-{id(tmp_path)}"
    box = subprocess.Popen([sys.executable, "-m", "pytest_baremetal.targets.physical.sim",
                            "--run-dir", str(run)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (run / "ready").exists():
            assert box.poll() is None, "the simulated box did not start"
            assert time.monotonic() < deadline, "the simulated box was not ready in 30 s"
            time.sleep(0.1)
        yield run
    finally:
        box.terminate()
        try:
            box.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(box.pid, signal.SIGKILL)
            box.wait()
        left = subprocess.run(["pgrep", "-f", f"simbox:{run}"], capture_output=True,
                              text=True, check=False).stdout.split()
        shutil.rmtree(run, ignore_errors=True)
        assert not left, "the simulated box's QEMU outlived the test"


@pytest.mark.slow
def test_a_lg_env_board_boots_through_labgrids_power_driver(
        pytester: pytest.Pytester, sim_box: Path) -> None:
    """A lab described only for labgrid: the console is its RawSerialPort, the power its
    ExternalPowerDriver (switching the relay through our LCUS command line), the build is
    written to the disk its options name; the boot suite passes on it."""
    pytester.makefile(".yaml", lab=LAB_BOX.format(run=sim_box, python=sys.executable))
    pytester.makepyfile(test_box="""
        def test_banner_and_kernel(dut):
            assert dut.event("boot").fields["platform"] == "uefi"
            assert dut.event("kernel").fields["kernel"] in ("avx2", "avx2-128")
            assert dut.board.kind == "physical"
    """)
    result = pytester.runpytest_subprocess(
        "--lg-env", "lab.yaml", "--target", "lg-box", "--bm-guest", "steps=8",
        f"--bm-logs={pytester.path / 'logs'}", f"--rootdir={pytester.path}",
        "-p", "no:cacheprovider", "-rs",
        "test_box.py", str(ROOT / "suites" / "test_boot.py"), timeout=600)
    assert result.ret == 0, result.stdout.str()[-4000:] + result.stderr.str()[-2000:]
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 4 and not outcomes.get("failed"), outcomes
    # no power sense in a labgrid description: that test says so instead of failing
    result.stdout.fnmatch_lines(["*SKIPPED*lg-box cannot tell whether the machine switched "
                                 "itself off*"])
    log = (sim_box / "sim.log").read_text(errors="replace")
    assert "relay on: starting" in log and "relay off: cutting power" in log, log[-2000:]
    assert (sim_box / "disk.img").stat().st_size > 0  # the build was written to the disk

"""Accelerator failure signatures, against stderr recorded on real hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_baremetal.targets.qemu.fallback import classify

DATA = Path(__file__).resolve().parent / "data"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


@pytest.mark.parametrize(("name", "status", "reason"), [
    ("kvm_cpu_max.stderr", None, "kvm: failed to set MSR 0x10a"),
    ("kvm_cpu_qemu64.stderr", "internal-error", "kvm: internal error (suberror 1)"),
    ("whpx_mmio.stderr", None, "whpx: failed to emulate MMIO access"),
    ("whpx_exec.stderr", None, "whpx: failed to exec a virtual processor"),
    ("whpx_not_built.stderr", None, "whpx: this QEMU was built without it"),
    ("kvm_no_module.stderr", None, "kvm: could not access KVM kernel module "
                                   "(No such file or directory)"),
    ("kvm_init_failed.stderr", None, "kvm: failed to initialize"),
])
def test_recorded_failures(name: str, status: str | None, reason: str) -> None:
    assert classify(recorded(name), status, console_seen=False) == reason


def test_stuck_status_is_noted_with_a_stderr_reason() -> None:
    reason = classify(recorded("kvm_cpu_max.stderr"), "internal-error", False)
    assert reason == "kvm: failed to set MSR 0x10a (QEMU status internal-error)"


def test_status_alone() -> None:
    assert classify("", "internal-error", True) == "QEMU stopped the guest: status internal-error"
    assert classify("", "paused", False) is not None
    assert classify("", "paused", True) is None


def test_silent_firmware() -> None:
    reason = classify("", "running", console_seen=False)
    assert reason is not None and "firmware printed nothing" in reason


@pytest.mark.parametrize("stderr", [
    "",
    recorded("tcg_skylake_warnings.stderr"),
    "qemu-system-x86_64: terminating on signal 15 from pid 9342\n",
])
def test_healthy_runs_are_not_accelerator_failures(stderr: str) -> None:
    assert classify(stderr, "running", console_seen=True) is None
    assert classify(stderr, None, console_seen=True) is None

"""AVX: the build enables AVX state itself, picks the AVX2+FMA kernel when it can, the
portable one when it cannot, and both give the same tokens."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.bm_needs_events("cpu", "kernel")


@pytest.mark.bm_requires("avx2", "fma")
def test_avx2_and_fma_detected(dut):
    cpu = dut.event("cpu")
    assert cpu.fields["avx"] and cpu.fields["avx2"] and cpu.fields["fma"], cpu.line
    assert cpu.fields["xsave"], cpu.line


@pytest.mark.bm_requires("avx2", "fma")
def test_xcr0_enables_avx_state(dut):
    step = dut.event("cpu_step", step="xcr0")
    xcr0 = int(step.fields["xcr0"])
    assert xcr0 & 0b111 == 0b111, f"XCR0={xcr0:#x}: x87, SSE and AVX state must all be on"
    assert step.fields["avx_state"]
    if dut.event("boot").fields["platform"] == "uefi":
        osxsave = dut.event("cpu_step", step="cr4_osxsave")
        assert osxsave.fields["ok"], osxsave.line


@pytest.mark.bm_requires("avx2", "fma")
def test_avx2_kernel_chosen(dut):
    kernel = dut.event("kernel")
    assert kernel.fields["kernel"] == "avx2", kernel.line
    assert kernel.fields["reason"] == "auto"


@pytest.mark.bm_lacks("avx2")
def test_portable_kernel_without_avx2(dut):
    cpu = dut.event("cpu")
    kernel = dut.event("kernel")
    assert not cpu.fields["avx2"], cpu.line
    assert kernel.fields["kernel"] == "portable", kernel.line
    assert kernel.fields["reason"] in ("no_avx2", "no_fma", "no_avx_state"), kernel.line


@pytest.mark.bm_needs_events("gen_ids")
def test_portable_kernel_gives_the_same_tokens(dut, bm_boot):
    """Forcing the portable kernel on the same board changes nothing in the output."""
    auto = dut.generations()[0]
    portable_dut = bm_boot(dut.board.name, kernel="portable", bench=0, repeats=1)
    assert portable_dut.event("kernel").fields["kernel"] == "portable"
    portable = portable_dut.generations()[0]
    assert portable.prompt_ids == auto.prompt_ids
    assert portable.ids == auto.ids, (
        f"avx2 kernel: {auto.ids}\nportable kernel: {portable.ids}"
    )


@pytest.mark.bm_needs_events("gen_ids")
def test_same_tokens_on_every_selected_board(dut, bm_targets, bm_boot, bm_session):
    """Across the selected QEMU boards (e.g. qemu-tcg and qemu-tcg-noavx), the tokens agree.

    Physical boards are left out: each is one machine, driven only by its own tests."""
    others = [name for name in bm_targets if name != dut.board.name
              and bm_session.board(name).kind == "qemu"]
    if not others:
        pytest.skip("no other QEMU board selected; pass several --target to compare")
    mine = dut.generations()[0].ids
    for name in others:
        theirs = bm_boot(name).generations()[0].ids
        assert theirs == mine, f"{dut.board.name}: {mine}\n{name}: {theirs}"

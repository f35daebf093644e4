"""AVX: the build enables AVX state itself, picks an AVX2+FMA kernel when it can (the 128-bit
one under QEMU TCG, where 256-bit float ops are slow), the portable one when it cannot, and
all give the same tokens. The real 256-bit AVX2+FMA kernel is checked on a short run."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.bm_needs_events("cpu", "kernel")


@pytest.mark.bm_requires("avx2", "fma")
@pytest.mark.bm_needs_events(cpu=["avx", "avx2", "fma", "xsave"])
def test_avx2_and_fma_detected(dut):
    cpu = dut.event("cpu")
    assert cpu.fields["avx"] and cpu.fields["avx2"] and cpu.fields["fma"], cpu.line
    assert cpu.fields["xsave"], cpu.line


@pytest.mark.bm_requires("avx2", "fma")
@pytest.mark.bm_needs_events(cpu_step=["step", "xcr0", "avx_state", "ok"], boot=["platform"])
def test_xcr0_enables_avx_state(dut):
    step = dut.event("cpu_step", step="xcr0")
    xcr0 = int(step.fields["xcr0"])
    assert xcr0 & 0b111 == 0b111, f"XCR0={xcr0:#x}: x87, SSE and AVX state must all be on"
    assert step.fields["avx_state"]
    if dut.event("boot").fields["platform"] == "uefi":
        osxsave = dut.event("cpu_step", step="cr4_osxsave")
        assert osxsave.fields["ok"], osxsave.line


TCG = "TCGTCGTCGTCG"  # QEMU TCG's CPUID leaf 0x40000000 signature
SHORT_RUN = {"bench": 0, "repeats": 1, "steps": 8}


@pytest.mark.bm_requires("avx2", "fma")
@pytest.mark.bm_needs_events(kernel=["kernel", "reason"])
def test_avx2_kernel_chosen(dut):
    """kernel=auto: 256-bit AVX2 on a real or hardware-virtualised CPU, 128-bit under TCG."""
    cpu = dut.event("cpu")
    kernel = dut.event("kernel")
    if cpu.fields.get("hypervisor") == TCG:
        assert (kernel.fields["kernel"], kernel.fields["reason"]) == ("avx2-128", "tcg"), (
            kernel.line)
    else:
        assert (kernel.fields["kernel"], kernel.fields["reason"]) == ("avx2", "auto"), (
            kernel.line)


@pytest.mark.bm_requires("avx2", "fma")
@pytest.mark.bm_needs_events("gen_ids", "gen_prompt_ids", kernel=["kernel", "reason"])
@pytest.mark.bm_interaction("script")
def test_real_avx2_kernel_on_a_short_run(dut, bm_boot):
    """kernel=avx2 forces the 256-bit AVX2+FMA kernel (even under TCG, where it is slow: so
    a few steps only); its tokens are the first tokens of the default run."""
    short = bm_boot(dut.board.name, kernel="avx2", **SHORT_RUN)
    kernel = short.event("kernel")
    assert (kernel.fields["kernel"], kernel.fields["reason"]) == ("avx2", "forced"), kernel.line
    full = dut.generations()[0]
    got = short.generations()[0]
    assert got.prompt_ids == full.prompt_ids
    assert got.ids, "the short run generated nothing"
    assert got.ids == full.ids[:len(got.ids)], (
        f"avx2 (256-bit): {got.ids}\ndefault kernel: {full.ids}")


@pytest.mark.bm_lacks("avx2")
@pytest.mark.bm_needs_events(cpu=["avx2"], kernel=["kernel", "reason"])
def test_portable_kernel_without_avx2(dut):
    cpu = dut.event("cpu")
    kernel = dut.event("kernel")
    assert not cpu.fields["avx2"], cpu.line
    assert kernel.fields["kernel"] == "portable", kernel.line
    assert kernel.fields["reason"] in ("no_avx2", "no_fma", "no_avx_state"), kernel.line


@pytest.mark.bm_needs_events("gen_ids", "gen_prompt_ids", kernel=["kernel"])
@pytest.mark.bm_interaction("script")
def test_portable_kernel_gives_the_same_tokens(dut, bm_boot):
    """Forcing the portable kernel on the same board changes nothing in the output
    (the default kernel is avx2, or avx2-128 under TCG)."""
    auto = dut.generations()[0]
    portable_dut = bm_boot(dut.board.name, kernel="portable", bench=0, repeats=1)
    assert portable_dut.event("kernel").fields["kernel"] == "portable"
    portable = portable_dut.generations()[0]
    assert portable.prompt_ids == auto.prompt_ids
    assert portable.ids == auto.ids, (
        f"avx2 kernel: {auto.ids}\nportable kernel: {portable.ids}"
    )


@pytest.mark.bm_needs_events("gen_ids")
@pytest.mark.bm_interaction("script")
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

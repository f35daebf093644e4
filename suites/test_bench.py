"""Module benchmarks: every module ran, its result is right, its timings are sane.

Expected results are recomputed here from their definitions (guest/MARKERS.md), not
taken from the guest's own `ok=1`.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

pytestmark = pytest.mark.bm_needs_events("bench", "timer")

MODULES = ("fibonacci", "sum", "primes", "sha256", "matmul", "fft", "quicksort")


def fibonacci(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def primes_below(n: int) -> int:
    sieve = bytearray([1]) * n
    sieve[0:2] = b"\0\0"
    for i in range(2, math.isqrt(n) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytearray(len(range(i * i, n, i)))
    return sum(sieve)


def sha256_of_pattern(n: int) -> str:
    return hashlib.sha256(bytes(i & 0xFF for i in range(n))).hexdigest()


def matmul_sum(n: int) -> int:
    i = np.arange(n)
    a = ((i[:, None] + i[None, :]) % 7) - 3
    b = ((i[:, None] * i[None, :]) % 5) - 2
    return int((a @ b).sum())


def fft_peaks(n: int) -> str:
    t = np.arange(n)
    x = np.cos(2 * np.pi * 5 * t / n) + 0.5 * np.sin(2 * np.pi * 17 * t / n)
    mags = np.abs(np.fft.fft(x))[: n // 2 + 1]
    top = sorted(int(k) for k in np.argsort(mags)[-2:])
    return f"{top[0]}-{top[1]}"


def quicksort_checksum(n: int) -> int:
    x = 2463534242
    values = []
    for _ in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        values.append(x)
    values.sort()
    return sum(v * (i + 1) for i, v in enumerate(values)) % 2**32


EXPECTED = {
    "fibonacci": lambda p: fibonacci(p),
    "sum": lambda p: p * (p + 1) // 2,
    "primes": primes_below,
    "sha256": sha256_of_pattern,
    "matmul": matmul_sum,
    "fft": fft_peaks,
    "quicksort": quicksort_checksum,
}


@pytest.mark.bm_needs_events(bench=["name"], bench_done=["modules", "failed"])
def test_every_module_ran(dut):
    dut.wait_done()
    names = [e.fields["name"] for e in dut.events("bench")]
    assert sorted(names) == sorted(MODULES), f"modules reported: {names}"
    done = dut.event("bench_done")
    assert done.fields["modules"] == len(MODULES) and done.fields["failed"] == 0, done.line


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.bm_needs_events(bench=["name", "param", "result", "ok"])
def test_module_result_is_right(dut, module):
    bench = dut.event("bench", name=module)
    expected = EXPECTED[module](int(bench.fields["param"]))
    assert str(bench.fields["result"]) == str(expected), bench.line
    assert bench.fields["ok"], bench.line


@pytest.mark.parametrize("module", MODULES)
@pytest.mark.bm_needs_events(bench=["name", "min_cycles", "median_cycles", "max_cycles", "min_ns",
                                    "median_ns", "max_ns"], timer=["tsc_hz"])
def test_module_timings_are_sane(dut, module):
    bench = dut.event("bench", name=module)
    f = bench.fields
    assert 0 < f["min_cycles"] <= f["median_cycles"] <= f["max_cycles"], bench.line
    assert 0 < f["min_ns"] <= f["median_ns"] <= f["max_ns"], bench.line
    tsc_hz = dut.event("timer").fields["tsc_hz"]
    from_cycles = f["median_cycles"] / tsc_hz * 1e9
    assert from_cycles == pytest.approx(f["median_ns"], rel=0.02, abs=2), (
        f"{bench.line}: cycles and ns disagree at tsc_hz={tsc_hz}"
    )
    dut.record_metric(f"bench_{module}_median_ns", f["median_ns"], "ns")


@pytest.mark.bm_needs_events(timer=["source", "tsc_hz"], boot=["platform"])
def test_timer_is_calibrated(dut):
    timer = dut.event("timer")
    assert timer.fields["source"] in ("acpi_pm", "stall", "clock"), timer.line
    if dut.event("boot").fields["platform"] == "uefi" and dut.board.kind == "qemu":
        assert timer.fields["source"] == "acpi_pm", "QEMU's ACPI PM timer was not found"
    assert 1e8 < timer.fields["tsc_hz"] < 1e10, timer.line

"""Performance: tok/s is measured with the calibrated TSC, recorded, and compared with
the history of this board."""

from __future__ import annotations

import math

import pytest

from pytest_baremetal.errors import PerformanceRegression

pytestmark = [
    pytest.mark.bm_needs_events("perf", "perf_summary"),
    pytest.mark.bm_interaction("script"),
]


@pytest.mark.bm_needs_events(perf=["prefill_tok_s", "decode_tok_s", "decode_tokens",
                                   "decode_ms"], cfg=["repeats"])
def test_tok_s_is_measured(dut):
    dut.wait_done()
    repeats = dut.events("perf")
    assert len(repeats) == int(dut.event("cfg").fields["repeats"]), "one [perf] per repeat"
    for perf in repeats:
        f = perf.fields
        for key in ("prefill_tok_s", "decode_tok_s"):
            assert math.isfinite(f[key]) and f[key] > 0, perf.line
        # tok/s must agree with tokens and milliseconds on the same line
        assert f["decode_tok_s"] == pytest.approx(
            f["decode_tokens"] / (f["decode_ms"] / 1000), rel=0.01
        ), perf.line


@pytest.mark.bm_needs_events(perf=["decode_tok_s"])
def test_tok_s_has_three_significant_digits(dut):
    for perf in dut.events("perf"):
        raw = perf.raw_fields["decode_tok_s"]
        digits = raw.replace(".", "").lstrip("0")
        assert len(digits) >= 3, f"decode_tok_s={raw} is too coarse"


@pytest.mark.bm_needs_events(perf=["decode_tok_s"])
def test_tok_s_against_history(dut, bm_perf):
    """Records this boot's samples and fails on a regression against the baseline (or a new
    change point that is a slowdown); a board with ``perf: {track: false}`` never fails.
    The verdict, with the smallest change it could detect, is printed either way."""
    verdict = bm_perf.check(dut, metric="decode_tok_s")
    print(verdict.explain())
    if verdict.failed:  # the type files it under "Performance regression"
        raise PerformanceRegression(verdict.explain())

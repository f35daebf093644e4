"""REPL: the guest reads prompts from the console and answers each one."""

from __future__ import annotations

import pytest

pytestmark = [
    pytest.mark.bm_needs_events("repl_ready", "gen_ids"),
    pytest.mark.bm_requires("repl"),
    pytest.mark.bm_config(mode="repl", bench=0, repeats=1, steps=24),
]


def test_answers_prompts_one_after_another(dut, bm_reference):
    first = dut.ask("Once upon a time")
    second = dut.ask("The little dog")
    for gen in (first, second):
        assert 0 < gen.tokens <= 24 and len(gen.ids) == gen.tokens
    ref = bm_reference(dut)
    assert first.prompt_ids == ref.encode("Once upon a time")
    assert second.prompt_ids == ref.encode("The little dog")
    assert ref.check(first).ok, ref.check(first).describe()


def test_quit_shuts_down(dut):
    dut.ask("One more")
    dut.console.send_line("/quit")
    assert dut.wait_done().fields["status"] == "ok"
    assert dut.wait_power_off() == 0

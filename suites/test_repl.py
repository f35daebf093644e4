"""REPL: the build reads prompts from the console and answers each one; a quit line ends it.

Runs on interactive builds (profile `interaction.mode: repl`) and on builds that become
interactive with some configuration (`interaction.repl_when`, the reference's `mode=repl`)."""

from __future__ import annotations

import pytest

pytestmark = [
    pytest.mark.bm_interaction("repl"),
    pytest.mark.bm_needs_events("prompt", "gen_begin", gen_end=["text"]),
    pytest.mark.bm_requires("repl"),
    pytest.mark.bm_prefer(bench=0, repeats=1, steps=24),
]


def test_answers_prompts_one_after_another(dut):
    first = dut.ask("Once upon a time")
    second = dut.ask("The little dog")
    for gen in (first, second):
        assert gen.text.strip(), "empty answer"
        assert not gen.text.endswith("\n"), repr(gen.text)
        if gen.tokens is not None:
            assert gen.tokens > 0
    assert dut.interactive and dut.wait_done().kind == "prompt"


@pytest.mark.bm_needs_events("gen_ids", "gen_prompt_ids", "cfg")
def test_answers_match_the_reference(dut, bm_reference):
    first = dut.ask("Once upon a time")
    assert 0 < first.tokens <= 24 and len(first.ids) == first.tokens
    ref = bm_reference(dut)
    assert first.prompt_ids == ref.encode("Once upon a time")
    assert ref.check(first).ok, ref.check(first).describe()


def test_quit_shuts_down(dut):
    if dut.profile.interaction.quit is None:
        pytest.skip(f"the marker profile {dut.profile.name!r} names no quit line")
    dut.ask("One more")
    dut.quit()
    if dut.profile.provides("done"):
        assert dut.event("done").fields.get("status", "ok") == "ok"
    if dut.senses_power_off:
        assert dut.wait_power_off() == 0

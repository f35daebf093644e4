"""Generation: the guest's tokens match the host reference step by step, and the shipped
model writes readable text."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.bm_needs_events("gen_begin", gen_end=["tokens", "text"])

SAMPLED = {"temperature": 0.8, "topp": 0.9, "seed": 1234, "bench": 0, "repeats": 1}


def first_generation(dut):
    """The run's first generation; an interactive build is asked for one."""
    if dut.interactive:
        return dut.ask("Once upon a time")
    return dut.generations()[0]


def test_generation_is_delimited_and_counted(dut):
    gen = first_generation(dut)
    assert gen.tokens is not None and gen.tokens > 0, "nothing was generated"
    if dut.profile.provides("gen_ids"):
        assert gen.tokens == len(gen.ids), f"{gen.tokens} tokens, {len(gen.ids)} ids"
    assert gen.text.strip(), "the generated text is empty"
    assert not gen.text.endswith("\n"), repr(gen.text)


@pytest.mark.bm_needs_events("gen_ids", cfg=["repeats"])
@pytest.mark.bm_interaction("script")
def test_every_repeat_generates_the_same_tokens(dut):
    generations = dut.generations()
    assert len(generations) == int(dut.event("cfg").fields["repeats"])
    assert all(g.ids == generations[0].ids for g in generations), "greedy repeats differ"


@pytest.mark.bm_needs_events("gen_ids", "gen_prompt_ids", "cfg")
@pytest.mark.bm_interaction("script")
def test_prompt_encoding_matches_reference(dut, bm_reference):
    ref = bm_reference(dut)
    gen = dut.generations()[0]
    assert gen.prompt_ids == ref.encode(ref.prompt), (
        f"guest prompt ids {gen.prompt_ids} != host {ref.encode(ref.prompt)}"
    )


@pytest.mark.bm_needs_events("gen_ids", "gen_prompt_ids", "cfg")
@pytest.mark.bm_interaction("script")
def test_greedy_tokens_match_reference(dut, bm_reference):
    ref = bm_reference(dut)
    gen = dut.generations()[0]
    check = ref.check(gen)
    assert check.ok, check.describe()


@pytest.mark.bm_config(**SAMPLED)
@pytest.mark.bm_needs_events("gen_ids", "gen_prompt_ids", "cfg")
@pytest.mark.bm_interaction("script")
def test_sampled_tokens_match_reference(dut, bm_reference):
    ref = bm_reference(dut)
    gen = dut.generations()[0]
    assert ref.temperature == SAMPLED["temperature"]
    check = ref.check(gen)
    assert check.ok, check.describe()


@pytest.mark.bm_needs_events("gen_ids", "gen_prompt_ids", "cfg")
@pytest.mark.bm_interaction("script")
def test_text_is_the_decoded_tokens(dut, bm_reference):
    ref = bm_reference(dut)
    gen = dut.generations()[0]
    assert gen.text.strip() == ref.decode(gen.prompt_ids[-1], gen.ids).strip()


@pytest.mark.bm_reference_model
@pytest.mark.bm_interaction("script")
def test_shipped_model_writes_english(dut):
    gen = dut.generations()[0]
    words = re.findall(r"[A-Za-z']+", gen.text)
    assert len(words) >= 8, f"too few words: {gen.text!r}"
    common = {"the", "a", "and", "was", "to", "she", "he", "her", "his", "it", "they", "with"}
    assert sum(w.lower() in common for w in words) >= 2, f"not English-like: {gen.text!r}"

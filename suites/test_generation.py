"""Generation: the guest's tokens match the host reference step by step, and the shipped
model writes readable text."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.bm_needs_events("gen_begin", "gen_end", "gen_ids")

SAMPLED = {"temperature": 0.8, "topp": 0.9, "seed": 1234, "bench": 0, "repeats": 1}


def test_generation_is_delimited_and_counted(dut):
    gen = dut.generations()[0]
    end = dut.event("gen_end")
    assert gen.tokens == int(end.fields["tokens"]) == len(gen.ids)
    assert gen.tokens > 0, "nothing was generated"
    assert gen.text.strip(), "the generated text is empty"


def test_every_repeat_generates_the_same_tokens(dut):
    generations = dut.generations()
    assert len(generations) == int(dut.event("cfg").fields["repeats"])
    assert all(g.ids == generations[0].ids for g in generations), "greedy repeats differ"


def test_prompt_encoding_matches_reference(dut, bm_reference):
    ref = bm_reference(dut)
    gen = dut.generations()[0]
    assert gen.prompt_ids == ref.encode(ref.prompt), (
        f"guest prompt ids {gen.prompt_ids} != host {ref.encode(ref.prompt)}"
    )


def test_greedy_tokens_match_reference(dut, bm_reference):
    ref = bm_reference(dut)
    gen = dut.generations()[0]
    check = ref.check(gen)
    assert check.ok, check.describe()


@pytest.mark.bm_config(**SAMPLED)
def test_sampled_tokens_match_reference(dut, bm_reference):
    ref = bm_reference(dut)
    gen = dut.generations()[0]
    assert ref.temperature == SAMPLED["temperature"]
    check = ref.check(gen)
    assert check.ok, check.describe()


def test_text_is_the_decoded_tokens(dut, bm_reference):
    ref = bm_reference(dut)
    gen = dut.generations()[0]
    assert gen.text.strip() == ref.decode(gen.prompt_ids[-1], gen.ids).strip()


@pytest.mark.bm_reference_model
def test_shipped_model_writes_english(dut):
    gen = dut.generations()[0]
    words = re.findall(r"[A-Za-z']+", gen.text)
    assert len(words) >= 8, f"too few words: {gen.text!r}"
    common = {"the", "a", "and", "was", "to", "she", "he", "her", "his", "it", "they", "with"}
    assert sum(w.lower() in common for w in words) >= 2, f"not English-like: {gen.text!r}"

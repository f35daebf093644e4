"""The shipped tiny story model (guest/models/tiny), checked in NumPy without torch."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from pytest_baremetal.llama import bpe, checkpoint, reference, tokenizer_file
from pytest_baremetal.llama.sampler import Sampler

MODELS = Path(__file__).resolve().parents[1] / "guest" / "models" / "tiny"
F32 = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def ck() -> checkpoint.Checkpoint:
    return checkpoint.load(MODELS / "model.bin")


@pytest.fixture(scope="module")
def vocab(ck: checkpoint.Checkpoint) -> tokenizer_file.Vocabulary:
    return tokenizer_file.load(MODELS / "tokenizer.bin", ck.config.vocab_size)


@pytest.fixture(scope="module")
def words() -> set[str]:
    return set((MODELS / "words.txt").read_text(encoding="utf-8").split())


@pytest.fixture(scope="module")
def samples() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((MODELS / "samples.json").read_text("utf-8"))
    return data


def generate_text(ck: checkpoint.Checkpoint, vocab: tokenizer_file.Vocabulary, prompt: str,
                  steps: int = 64) -> tuple[list[int], str]:
    prompt_ids = bpe.encode(vocab, prompt)
    ids = reference.generate(reference.Transformer(ck), prompt_ids, steps,
                             Sampler(ck.config.vocab_size))
    text = bpe.decode(vocab, ids, prev_id=prompt_ids[-1]).decode("utf-8")
    return ids, text


def english_ratio(text: str, words: set[str]) -> tuple[float, int]:
    found = re.findall(r"[A-Za-z']+", text)
    known = sum(1 for w in found if w.lower() in words)
    return known / max(1, len(found)), len(found)


def test_shape_and_size(ck: checkpoint.Checkpoint) -> None:
    c = ck.config
    assert (c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
            c.seq_len) == (128, 384, 4, 8, 4, 1024, 256)
    assert c.shared_classifier
    assert c.n_kv_heads < c.n_heads  # exercises grouped-query attention
    size = (MODELS / "model.bin").stat().st_size
    assert size == c.file_size() < 5_000_000
    for name, array in ck.weights.items():
        assert np.all(np.isfinite(array)), name


def test_tokenizer_layout(vocab: tokenizer_file.Vocabulary) -> None:
    assert vocab.pieces[:3] == (b"<unk>", b"<s>", b"</s>")
    assert vocab.pieces[3:259] == tuple(bpe.byte_piece(b) for b in range(256))
    assert len(set(vocab.pieces)) == len(vocab)
    ids = bpe.encode(vocab, "Once upon a time")
    assert [vocab.pieces[i] for i in ids] == [b"<s>", b" Once", b" upon", b" a", b" time"]


def batch_logits(ck: checkpoint.Checkpoint, tokens: list[int]) -> F32:
    """An independent whole-sequence forward pass in float64 (causal mask instead of a KV
    cache), written from the llama2.c description: logits for every position."""
    c, w = ck.config, ck.weights
    hs, group = c.head_size, c.n_heads // c.n_kv_heads
    t = len(tokens)

    def norm(x: npt.NDArray[np.float64], g: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * g
        return out

    def rope(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # x: (t, heads, hs); pairs (2j, 2j+1), angle pos * 10000^(-2j/hs)
        freq = 10000.0 ** (-np.arange(0, hs, 2) / hs)
        angle = np.arange(t)[:, None, None] * freq[None, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * np.cos(angle) - x1 * np.sin(angle)
        out[..., 1::2] = x0 * np.sin(angle) + x1 * np.cos(angle)
        return out

    x = w["token_embedding"].astype(np.float64)[tokens]
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for layer in range(c.n_layers):
        xn = norm(x, w["rms_att"][layer])
        q = rope((xn @ w["wq"][layer].T).reshape(t, c.n_heads, hs))
        k = rope((xn @ w["wk"][layer].T).reshape(t, c.n_kv_heads, hs))
        v = (xn @ w["wv"][layer].T).reshape(t, c.n_kv_heads, hs)
        heads = []
        for h in range(c.n_heads):
            kv = h // group
            s = q[:, h] @ k[:, kv].T / math.sqrt(hs) + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            heads.append((p / p.sum(-1, keepdims=True)) @ v[:, kv])
        x = x + np.concatenate(heads, axis=1) @ w["wo"][layer].T
        xn = norm(x, w["rms_ffn"][layer])
        h1 = xn @ w["w1"][layer].T
        x = x + ((h1 / (1 + np.exp(-h1))) * (xn @ w["w3"][layer].T)) @ w["w2"][layer].T
    logits: F32 = (norm(x, w["rms_final"]) @ ck.classifier.T.astype(np.float64)).astype(
        np.float32)
    return logits


def test_reference_forward_matches_independent_numpy(ck: checkpoint.Checkpoint,
                                                      vocab: tokenizer_file.Vocabulary) -> None:
    tokens = bpe.encode(vocab, "Once upon a time, there was a little girl named Lily.")
    expected = batch_logits(ck, tokens)
    model = reference.Transformer(ck)
    for pos, token in enumerate(tokens):
        got = model.forward(token, pos)
        np.testing.assert_allclose(got, expected[pos], atol=2e-3 * max(1.0, float(
            np.abs(expected[pos]).max())))
        assert int(np.argmax(got)) == int(np.argmax(expected[pos]))


def test_numpy_reproduces_training_samples(ck: checkpoint.Checkpoint,
                                           vocab: tokenizer_file.Vocabulary,
                                           samples: list[dict[str, Any]]) -> None:
    """samples.json holds torch's greedy ids at export; NumPy must agree token for token."""
    assert len(samples) >= 2
    for sample in samples:
        assert bpe.encode(vocab, sample["prompt"]) == sample["prompt_ids"]
        ids, text = generate_text(ck, vocab, sample["prompt"])
        assert ids == sample["ids"], sample["prompt"]
        assert text == sample["text"]


@pytest.mark.parametrize("prompt", ["Once upon a time", "Lily and her dog"])
def test_greedy_generation_is_english(ck: checkpoint.Checkpoint,
                                      vocab: tokenizer_file.Vocabulary, words: set[str],
                                      prompt: str) -> None:
    ids, text = generate_text(ck, vocab, prompt)
    ratio, count = english_ratio(text, words)
    assert count >= 20, text
    assert ratio > 0.9, text
    assert all(i >= 259 for i in ids), "no byte-fallback or special tokens in plain English"


def test_word_check_rejects_gibberish(words: set[str]) -> None:
    # the English check itself can fail: random pieces are not words
    assert english_ratio("the dog", words) == (1.0, 2)
    assert english_ratio("zq xvv blorf the", words)[0] < 0.5

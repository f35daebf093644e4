"""The NumPy reference: forward pass, RNG, sampling, generation and teacher forcing."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from pytest_baremetal.llama import checkpoint as ckpt
from pytest_baremetal.llama.reference import (
    DEFAULT_TOLERANCE,
    Transformer,
    check_generation,
    generate,
    max_new_tokens,
    rope,
    rope_angles,
)
from pytest_baremetal.llama.sampler import (
    Rng,
    Sampler,
    sample_multinomial,
    sample_topp,
    softmax,
)
from pytest_baremetal.llama.tokenizer_file import BOS, EOS, Vocabulary

GQA = ckpt.Config(dim=32, hidden_dim=48, n_layers=2, n_heads=4, n_kv_heads=2,
                  vocab_size=40, seq_len=20)
MHA = replace(GQA, n_kv_heads=4, n_layers=1)
SEPARATE = replace(GQA, shared_classifier=False)
MQA = replace(GQA, n_kv_heads=1)


def make_model(tmp_path: Path, config: ckpt.Config, seed: int = 0, scale: float = 0.3,
               name: str = "model.bin") -> Path:
    path = tmp_path / name
    ckpt.save(path, config, ckpt.random_weights(config, seed=seed, scale=scale))
    return path


def full_forward(model: ckpt.Checkpoint, tokens: list[int]) -> np.ndarray:
    """Logits at every position, computed at once in float64 without a cache: a causal mask
    over the whole sequence and RoPE as complex multiplication."""
    c = model.config
    w = {k: np.asarray(v, dtype=np.float64) for k, v in model.weights.items()}
    t, hs = len(tokens), c.head_size

    def norm(a: np.ndarray, g: np.ndarray) -> np.ndarray:
        return a / np.sqrt((a * a).mean(axis=-1, keepdims=True) + 1e-5) * g

    theta = 10000.0 ** (-np.arange(0, hs, 2) / hs)
    turn = np.exp(1j * np.arange(t)[:, None] * theta)  # (t, hs/2)

    def rotate(m: np.ndarray, heads: int) -> np.ndarray:
        z = m.reshape(t, heads, hs // 2, 2)
        zc = (z[..., 0] + 1j * z[..., 1]) * turn[:, None, :]
        return np.stack([zc.real, zc.imag], axis=-1).reshape(t, heads, hs)

    mask = np.triu(np.full((t, t), -np.inf), 1)
    x = w["token_embedding"][tokens]
    group = c.n_heads // c.n_kv_heads
    for layer in range(c.n_layers):
        h = norm(x, w["rms_att"][layer])
        q = rotate(h @ w["wq"][layer].T, c.n_heads)
        k = rotate(h @ w["wk"][layer].T, c.n_kv_heads)
        v = (h @ w["wv"][layer].T).reshape(t, c.n_kv_heads, hs)
        out = np.zeros((t, c.n_heads, hs))
        for head in range(c.n_heads):
            s = q[:, head] @ k[:, head // group].T / math.sqrt(hs) + mask
            p = np.exp(s - s.max(axis=1, keepdims=True))
            out[:, head] = (p / p.sum(axis=1, keepdims=True)) @ v[:, head // group]
        x = x + out.reshape(t, -1) @ w["wo"][layer].T
        h = norm(x, w["rms_ffn"][layer])
        a, b = h @ w["w1"][layer].T, h @ w["w3"][layer].T
        x = x + (a / (1 + np.exp(-a)) * b) @ w["w2"][layer].T
    classifier = w["wcls"] if "wcls" in w else w["token_embedding"]
    result: np.ndarray = norm(x, w["rms_final"]) @ classifier.T
    return result


# --- forward pass --------------------------------------------------------------------------


@pytest.mark.parametrize("config", [GQA, MHA, MQA, SEPARATE], ids=["gqa", "mha", "mqa", "wcls"])
def test_cached_forward_matches_full_sequence_attention(tmp_path: Path,
                                                        config: ckpt.Config) -> None:
    path = make_model(tmp_path, config, seed=3)
    tokens = [int(t) for t in np.random.default_rng(1).integers(0, config.vocab_size,
                                                                 config.seq_len)]
    expected = full_forward(ckpt.load(path), tokens)
    model = Transformer(path)
    for pos, token in enumerate(tokens):
        got = model.forward(token, pos)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected[pos], rtol=1e-4, atol=1e-5,
                                   err_msg=f"position {pos}")


def test_reset_then_new_sequence_matches_a_fresh_model(tmp_path: Path) -> None:
    path = make_model(tmp_path, GQA)
    used = Transformer(path)
    for pos, token in enumerate([5, 9, 11, 3, 7, 8]):
        used.forward(token, pos)
    used.reset()
    fresh = Transformer(path)
    for pos, token in enumerate([1, 4, 2]):
        np.testing.assert_array_equal(used.forward(token, pos), fresh.forward(token, pos))


def test_forward_rejects_bad_token_and_position(tmp_path: Path) -> None:
    model = Transformer(make_model(tmp_path, GQA))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.forward(GQA.vocab_size, 0)
    with pytest.raises(ValueError, match="position"):
        model.forward(1, GQA.seq_len)


def test_separate_classifier_is_used(tmp_path: Path) -> None:
    weights = ckpt.random_weights(GQA, seed=5, scale=0.3)
    ckpt.save(tmp_path / "shared.bin", GQA, weights)
    doubled = dict(weights, wcls=weights["token_embedding"] * np.float32(2.0))
    ckpt.save(tmp_path / "sep.bin", SEPARATE, doubled)
    shared, separate = Transformer(tmp_path / "shared.bin"), Transformer(tmp_path / "sep.bin")
    for pos, token in enumerate([1, 17, 30]):
        a, b = shared.forward(token, pos), separate.forward(token, pos)
        np.testing.assert_allclose(b, 2.0 * a, rtol=1e-5, atol=1e-6)
        assert not np.allclose(a, b)


def test_rope_keeps_norms_and_depends_on_relative_position() -> None:
    hs, heads = 8, 3
    cos, sin = rope_angles(64, hs)
    rng = np.random.default_rng(0)
    q = rng.standard_normal(hs * heads).astype(np.float32)
    k = rng.standard_normal(hs * heads).astype(np.float32)
    np.testing.assert_array_equal(rope(q, cos[0], sin[0]), q)
    for pos in (1, 7, 63):
        rotated = rope(q, cos[pos], sin[pos])
        pair_norms = np.hypot(rotated[0::2], rotated[1::2])
        np.testing.assert_allclose(pair_norms, np.hypot(q[0::2], q[1::2]), rtol=1e-5)
        assert not np.allclose(rotated, q)
    for m, n, shift in ((5, 2, 10), (9, 9, 30), (3, 12, 40)):
        before = rope(q, cos[m], sin[m]) @ rope(k, cos[n], sin[n])
        after = rope(q, cos[m + shift], sin[m + shift]) @ rope(k, cos[n + shift], sin[n + shift])
        assert before == pytest.approx(after, rel=1e-4, abs=1e-5)


def test_rope_rotates_interleaved_pairs_at_llama2c_frequencies() -> None:
    hs = 8
    cos, sin = rope_angles(16, hs)
    pos = 3
    for i in range(0, 2 * hs, 2):  # two heads: the frequency restarts in each head
        vec = np.zeros(2 * hs, dtype=np.float32)
        vec[i] = 1.0
        angle = pos * 10000.0 ** (-(i % hs) / hs)
        out = rope(vec, cos[pos], sin[pos])
        assert out[i] == pytest.approx(math.cos(angle), abs=1e-6)
        assert out[i + 1] == pytest.approx(math.sin(angle), abs=1e-6)
        assert np.count_nonzero(out) <= 2


# --- RNG and sampling ----------------------------------------------------------------------


def plain_u32_sequence(seed: int, count: int) -> list[int]:
    """MARKERS.md's xorshift64* written with modular arithmetic instead of shifts/masks."""
    two64, out, s = 2**64, [], seed
    for _ in range(count):
        s ^= s // 2**12
        s ^= (s * 2**25) % two64
        s ^= s // 2**27
        out.append((s * 0x2545F4914F6CDD1D) % two64 // 2**32)
    return out


def test_rng_seed_42_matches_plain_integer_arithmetic() -> None:
    # By hand: 42>>12 = 0; 42 ^ 42<<25 = 1409286186; >>27 = 10; ^10 -> 1409286176.
    first = (1409286176 * 0x2545F4914F6CDD1D) % 2**64 // 2**32
    expected = plain_u32_sequence(42, 6)
    assert expected[0] == first
    rng = Rng(42)
    assert [rng.next_u32() for _ in range(6)] == expected
    assert Rng(42).next_u32() == 1456360119
    rng = Rng(42)
    floats = [rng.next_f32() for _ in range(6)]
    assert floats == [(u >> 8) / 2**24 for u in expected]
    assert all(0.0 <= f < 1.0 and np.float32(f) == f for f in floats)


def test_rng_state_stays_64_bit() -> None:
    rng = Rng(2**64 - 1)
    values = [rng.next_u32() for _ in range(50)]
    assert values == plain_u32_sequence(2**64 - 1, 50)
    assert 0 <= rng.state < 2**64 and all(0 <= v < 2**32 for v in values)


def test_greedy_takes_lowest_id_on_ties_and_draws_no_coin() -> None:
    sampler = Sampler(4, temperature=0.0, seed=42)
    assert sampler.sample(np.array([1.0, 3.0, 3.0, 0.0], dtype=np.float32)) == 1
    assert sampler.rng.state == 42


def test_multinomial_uses_the_seeded_coin() -> None:
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32))
    coins = [(u >> 8) / 2**24 for u in plain_u32_sequence(42, 4)]  # 0.339, 0.782, 0.790, 0.944
    cdf = [0.1, 0.3, 0.6, 1.0]
    expected = [next(i for i, c in enumerate(cdf) if c > coin) for coin in coins]
    sampler = Sampler(4, temperature=1.0, topp=1.0, seed=42)
    assert [sampler.sample(logits) for _ in coins] == expected == [2, 3, 3, 3]


def test_multinomial_falls_back_to_the_last_index() -> None:
    probs = np.array([0.5, 0.4999], dtype=np.float32)
    assert sample_multinomial(probs, 0.99995) == 1
    assert sample_multinomial(probs, 0.0) == 0


def test_topp_sorts_by_probability_and_rescales_the_coin() -> None:
    probs = np.array([0.15, 0.5, 0.05, 0.3], dtype=np.float32)  # sorted: ids 1, 3, 0, 2
    # prefix: 0.5, 0.8 > 0.7 -> ids [1, 3]; r = coin * 0.8
    assert sample_topp(probs, 0.7, 0.6) == 1  # r = 0.48 < 0.5
    assert sample_topp(probs, 0.7, 0.7) == 3  # r = 0.56
    assert sample_topp(probs, 0.7, 0.999) == 3  # never beyond the prefix


def test_topp_breaks_ties_by_lower_id_and_excludes_below_cutoff() -> None:
    flat = np.full(4, 0.25, dtype=np.float32)
    # cumulative 0.25, 0.5 (not > 0.5), 0.75 -> prefix ids [0, 1, 2]
    assert [sample_topp(flat, 0.5, c) for c in (0.0, 0.4, 0.99)] == [0, 1, 2]
    probs = np.array([0.3, 0.3, 0.3, 0.05, 0.05], dtype=np.float32)
    # cutoff (1 - 0.65) / 4 = 0.0875 drops ids 3 and 4 even when the coin is near 1
    assert sample_topp(probs, 0.65, 0.999) == 2
    assert sample_multinomial(probs, 0.999) == 4


@pytest.mark.parametrize("topp", [0.0, 1.0, 1.5, -0.1])
def test_topp_outside_0_1_is_plain_multinomial(topp: float) -> None:
    logits = np.array([0.3, 2.0, -1.0, 1.0, 0.5], dtype=np.float32)
    plain = Sampler(5, temperature=0.7, topp=topp, seed=9)
    rng = Rng(9)
    probs = softmax(logits, 0.7)
    for _ in range(20):
        assert plain.sample(logits) == sample_multinomial(probs, rng.next_f32())


def test_temperature_scales_logits_before_softmax() -> None:
    logits = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    expected = np.exp(logits / 0.5) / np.exp(logits / 0.5).sum()
    np.testing.assert_allclose(Sampler(3, 0.5).probabilities(logits), expected, rtol=1e-6)
    assert softmax(logits).sum() == pytest.approx(1.0, abs=1e-6)


# --- generation ----------------------------------------------------------------------------


@dataclass
class Scripted:
    """A model whose logits are given per position (for stop rules and near-ties)."""

    table: dict[int, np.ndarray]
    config: ckpt.Config
    fed: list[tuple[int, int]]

    def reset(self) -> None:
        self.fed.clear()

    def forward(self, token: int, pos: int) -> np.ndarray:
        self.fed.append((token, pos))
        default = np.zeros(self.config.vocab_size, dtype=np.float32)
        default[-1] = 1.0  # the last id (7 in the default vocabulary of 8)
        return self.table.get(pos, default)


def scripted(table: dict[int, list[float] | np.ndarray], vocab: int = 8,
             seq_len: int = 16) -> Scripted:
    config = replace(GQA, vocab_size=vocab, seq_len=seq_len)
    return Scripted({p: np.asarray(v, dtype=np.float32) for p, v in table.items()}, config, [])


def test_generate_stops_at_eos_and_bos() -> None:
    eos = [0.0] * 8
    eos[EOS] = 5.0
    model = scripted({3: eos})
    out = generate(model, [BOS, 4, 5], 10, Sampler(8))
    assert out == [7]  # pos 2 -> 7; pos 3 -> EOS, not included
    assert model.fed == [(1, 0), (4, 1), (5, 2), (7, 3)]
    bos = [0.0] * 8
    bos[BOS] = 5.0
    assert generate(scripted({2: bos}), [BOS, 4, 5], 10, Sampler(8)) == []


def test_generate_stops_after_steps_and_at_seq_len() -> None:
    assert generate(scripted({}), [BOS, 4], 3, Sampler(8)) == [7, 7, 7]
    model = scripted({}, seq_len=6)
    out = generate(model, [BOS, 4], 100, Sampler(8))
    assert len(out) == max_new_tokens(model.config, 2, 100) == 5
    assert max(pos for _, pos in model.fed) == 5
    assert generate(scripted({}), [BOS], 0, Sampler(8)) == []


def test_generate_rejects_bad_prompts() -> None:
    with pytest.raises(ValueError, match="no ids"):
        generate(scripted({}), [], 3, Sampler(8))
    with pytest.raises(ValueError, match="seq_len"):
        generate(scripted({}, seq_len=2), [BOS, 3, 4], 3, Sampler(8))


def test_greedy_generation_matches_the_full_sequence_reference(tmp_path: Path) -> None:
    path = make_model(tmp_path, GQA, seed=11)
    prompt = [BOS, 20, 33]
    out = generate(Transformer(path), prompt, 10, Sampler(GQA.vocab_size))
    tokens = list(prompt)
    model = ckpt.load(path)
    for _ in range(len(out)):
        tokens.append(int(np.argmax(full_forward(model, tokens)[-1])))
    assert out == tokens[len(prompt):]
    assert len(out) > 0


# --- teacher forcing -----------------------------------------------------------------------

SETTINGS = [(0.0, 0.9), (0.8, 0.9), (1.0, 1.0), (1.2, 0.5)]


@pytest.mark.parametrize(("temperature", "topp"), SETTINGS)
def test_teacher_forcing_accepts_the_reference_generation(
        tmp_path: Path, temperature: float, topp: float) -> None:
    model = Transformer(make_model(tmp_path, GQA, seed=2))
    prompt = [BOS, 8, 9, 10]
    steps = 12
    out = generate(model, prompt, steps, Sampler(GQA.vocab_size, temperature, topp, seed=42))
    check = check_generation(model, prompt, out, temperature, topp, seed=42, steps=steps)
    assert check.ok, check.describe()
    assert check.first_divergence is None
    assert check.steps_checked == len(out)
    assert list(check.reference_ids) == out and check.near_ties == ()
    assert "matches the reference" in check.describe()


def reference_logits(model: Transformer, tokens: list[int]) -> np.ndarray:
    model.reset()
    logits = np.empty(0)
    for pos, token in enumerate(tokens):
        logits = model.forward(token, pos)
    return logits


def test_teacher_forcing_reports_the_first_changed_greedy_token(tmp_path: Path) -> None:
    model = Transformer(make_model(tmp_path, GQA, seed=4))
    prompt, k = [BOS, 8, 9, 10], 4
    out = generate(model, prompt, 10, Sampler(GQA.vocab_size))
    assert len(out) == 10, "premise: this model does not stop early"
    logits = reference_logits(model, prompt + out[:k])
    wrong = int(np.argmin(logits))
    guest = [*out[:k], wrong, *out[k + 1:]]
    pieces = tuple(f"t{i}".encode() for i in range(GQA.vocab_size))
    vocab = Vocabulary(pieces, (0.0,) * GQA.vocab_size, 3)
    check = check_generation(model, prompt, guest, vocab=vocab)
    div = check.first_divergence
    assert not check.ok and div is not None
    assert (div.step, div.position, div.guest_token, div.reference_token) == \
        (k, len(prompt) - 1 + k, wrong, out[k])
    assert check.steps_checked == k and list(check.reference_ids) == out[: k + 1]
    top = [c.token for c in div.reference_top]
    assert top == [int(t) for t in np.argsort(-logits, kind="stable")[:5]]
    assert div.reference_top[0].logit == pytest.approx(float(logits.max()))
    assert [c.rank for c in div.reference_top] == [1, 2, 3, 4, 5]
    assert div.guest is not None and div.guest.rank == GQA.vocab_size
    assert div.guest.logit == pytest.approx(float(logits[wrong]))
    assert div.reference_top[0].piece == f"t{out[k]}"
    text = check.describe()
    for needle in (f"step {k}", f"guest token {wrong}", f"reference token {out[k]}",
                   f"'t{out[k]}'", "greedy"):
        assert needle in text


def test_teacher_forcing_reports_a_changed_sampled_token(tmp_path: Path) -> None:
    model = Transformer(make_model(tmp_path, GQA, seed=4))
    prompt, k = [BOS, 3], 2
    out = generate(model, prompt, 8, Sampler(GQA.vocab_size, 0.9, 0.9, seed=7))
    logits = reference_logits(model, prompt + out[:k])
    wrong = int(np.argmin(logits))
    guest = [*out[:k], wrong, *out[k + 1:]]
    check = check_generation(model, prompt, guest, 0.9, 0.9, seed=7)
    div = check.first_divergence
    assert div is not None and (div.step, div.guest_token, div.reference_token) == \
        (k, wrong, out[k])
    rng = Rng(7)
    coins = [rng.next_f32() for _ in range(k + 1)]
    assert div.coin == coins[k]
    assert div.reference is not None and div.reference.token == out[k]
    assert div.reference.prob == pytest.approx(float(softmax(logits, 0.9)[out[k]]), rel=1e-5)
    assert div.reference_top[0].prob == pytest.approx(float(softmax(logits, 0.9).max()),
                                                      rel=1e-5)
    assert "coin" in check.describe() and "temperature=0.9" in check.describe()


def test_guest_stopping_early_or_late_is_reported(tmp_path: Path) -> None:
    model = Transformer(make_model(tmp_path, GQA, seed=2))
    prompt = [BOS, 8]
    out = generate(model, prompt, 6, Sampler(GQA.vocab_size))
    assert len(out) == 6 and EOS not in out
    early = check_generation(model, prompt, out[:4], steps=6)
    assert early.first_divergence is not None
    assert early.first_divergence.step == 4 and early.first_divergence.guest_token is None
    assert "stopped" in early.describe()
    assert check_generation(model, prompt, out[:4]).ok  # without steps: not checked
    late = check_generation(model, prompt, out, steps=5)
    assert late.first_divergence is not None and late.first_divergence.step == 5
    assert "steps=5" in late.describe()


def test_guest_may_stop_where_eos_is_acceptable() -> None:
    eos = [0.0] * 8
    eos[EOS] = 5.0
    assert check_generation(scripted({3: eos}), [BOS, 4, 5], [7], steps=10).ok
    printed = check_generation(scripted({3: eos}), [BOS, 4, 5], [7, EOS], steps=10)
    assert printed.first_divergence is not None
    assert "never printed" in printed.first_divergence.reason


def test_guest_tokens_beyond_seq_len_or_vocabulary_are_reported() -> None:
    model = scripted({}, seq_len=4)
    beyond = check_generation(model, [BOS, 4], [7, 7, 7, 7])
    assert beyond.first_divergence is not None and beyond.first_divergence.step == 3
    assert "seq_len" in beyond.describe()
    outside = check_generation(scripted({}), [BOS], [7, 99])
    assert outside.first_divergence is not None and outside.first_divergence.step == 1
    assert "outside the vocabulary" in outside.describe()


def test_greedy_near_tie_is_accepted_within_tolerance_only() -> None:
    near = [0.0, 0.0, 0.0, 2.0, 2.0 - 1e-5, 0.0, 0.0, 0.0]
    check = check_generation(scripted({1: near}), [BOS, 5], [4, 7])
    assert check.ok and check.near_ties == (0,) and check.reference_ids == (3, 7)
    assert "near-tie" in check.describe()
    strict = check_generation(scripted({1: near}), [BOS, 5], [4], tolerance=0.0)
    assert not strict.ok
    far = [0.0, 0.0, 0.0, 2.0, 2.0 - 1e-2, 0.0, 0.0, 0.0]
    assert not check_generation(scripted({1: far}), [BOS, 5], [4]).ok
    # the absolute tolerance grows with the logit scale
    big = [0.0, 0.0, 0.0, 200.0, 200.0 - 1e-2, 0.0, 0.0, 0.0]
    assert DEFAULT_TOLERANCE * 200.0 > 1e-2
    assert check_generation(scripted({1: big}), [BOS, 5], [4]).ok


def logits_for(probs: list[float]) -> np.ndarray:
    return np.log(np.asarray(probs, dtype=np.float64)).astype(np.float32)


def test_sampling_accepts_a_token_across_a_boundary_within_the_coin_tolerance() -> None:
    coin = Rng(42).next_f32()  # 0.339...
    for gap, accepted in ((1e-6, True), (5e-2, False)):
        first = coin + gap  # token 3 covers [0, coin+gap): the coin selects it
        probs = [1e-9, 1e-9, 1e-9, first, 1.0 - first - 4e-9, 1e-9, 1e-9]
        model = scripted({0: logits_for(probs)}, vocab=7)
        assert check_generation(model, [BOS], [3], 1.0, 1.0, seed=42).ok
        check = check_generation(model, [BOS], [4], 1.0, 1.0, seed=42)
        assert check.ok is accepted, check.describe()


def test_topp_accepts_swapped_order_of_near_equal_probabilities_only() -> None:
    coin = Rng(42).next_f32()  # 0.339: r = coin * prefix sum falls in the first sorted id
    for second, accepted in ((0.35 * (1 + 1e-7), True), (0.3, False)):
        probs = [0.35, 0.05, second, 0.05, 0.55 - second]  # prefix: ids 0 and 2
        model = scripted({0: logits_for(probs)}, vocab=5)
        ref = Sampler(5, 1.0, 0.5, seed=42).sample(logits_for(probs))
        assert ref in (0, 2)
        other = 2 - ref
        check = check_generation(model, [BOS], [other], 1.0, 0.5, seed=42)
        assert check.ok is accepted, (coin, ref, check.describe())


# --- the guest's C host build, checked by teacher forcing ----------------------------------

GUEST = Path(__file__).resolve().parents[1] / "guest"
HOST_CONFIG = ckpt.Config(dim=64, hidden_dim=160, n_layers=2, n_heads=8, n_kv_heads=2,
                          vocab_size=400, seq_len=40, shared_classifier=False)


@pytest.fixture(scope="module")
def bm_guest() -> Path:
    """The host build of the guest, (re)built with make; skips when it cannot be built."""
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed: cannot build guest/build/host/bm-guest")
    if not (GUEST / "Makefile").is_file():
        pytest.skip(f"{GUEST}/Makefile is missing: no guest host build")
    try:
        done = subprocess.run(["make", "-C", str(GUEST), "host"], capture_output=True,
                              text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("make -C guest host took more than 300 s")
    binary = GUEST / "build" / "host" / "bm-guest"
    if done.returncode != 0 or not binary.is_file():
        pytest.skip(f"make -C guest host failed (exit {done.returncode}):\n"
                    f"{done.stderr[-2000:]}")
    return binary


def host_vocabulary() -> tuple[list[bytes], list[float]]:
    """Specials, the 256 byte pieces, printable ASCII, then a few scored merges."""
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [f"<0x{b:02X}>".encode() for b in range(256)]
    pieces += [bytes([c]) for c in range(32, 127)]
    scores = [0.0] * len(pieces)
    for i, merge in enumerate([b" t", b"he", b"on", b" the", b"ce", b"up"]):
        pieces.append(merge)
        scores.append(10.0 - i)
    assert len(pieces) < HOST_CONFIG.vocab_size
    while len(pieces) < HOST_CONFIG.vocab_size:
        pieces.append(f"w{len(pieces)}".encode())
        scores.append(-100.0)
    return pieces, scores


def run_host_guest(binary: Path, workdir: Path, settings: dict[str, str]) -> dict[str, str]:
    import subprocess

    lines = [f"{key}={value}" for key, value in settings.items()]
    (workdir / "run.cfg").write_text("\n".join(lines) + "\n")
    done = subprocess.run([str(binary), str(workdir / "run.cfg")], capture_output=True,
                          timeout=120)
    out = done.stdout.decode("utf-8", errors="replace").replace("\r\n", "\n")
    assert "[done] status=ok" in out, f"exit {done.returncode}:\n{out[-3000:]}"
    fields = {}
    for line in out.splitlines():
        for key in ("prompt_ids", "ids"):
            if line.startswith(f"[gen] {key}=") and key not in fields:
                fields[key] = line.split("=", 1)[1]
    return fields


def parse_ids(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


@pytest.mark.parametrize(("temperature", "topp", "kernel"), [
    (0.0, 0.9, "auto"), (0.0, 0.9, "portable"), (0.8, 0.9, "auto"), (1.0, 1.0, "portable"),
])
def test_host_guest_generation_passes_teacher_forcing(
        bm_guest: Path, tmp_path: Path, temperature: float, topp: float, kernel: str) -> None:
    from pytest_baremetal.llama import bpe, tokenizer_file

    ckpt.save(tmp_path / "model.bin", HOST_CONFIG,
              ckpt.random_weights(HOST_CONFIG, seed=21, scale=0.25))
    pieces, scores = host_vocabulary()
    tokenizer_file.save(tmp_path / "tokenizer.bin", pieces, scores)
    prompt, steps, seed = "Once upon the time", 30, 1234
    fields = run_host_guest(bm_guest, tmp_path, {
        "mode": "script", "model": "model.bin", "tokenizer": "tokenizer.bin",
        "prompt": f'"{prompt}"', "steps": str(steps), "seed": str(seed),
        "temperature": f"{temperature}", "topp": f"{topp}", "repeats": "1", "bench": "0",
        "kernel": kernel,
    })
    vocab = tokenizer_file.load(tmp_path / "tokenizer.bin", HOST_CONFIG.vocab_size)
    prompt_ids, ids = parse_ids(fields["prompt_ids"]), parse_ids(fields["ids"])
    assert prompt_ids == bpe.encode(vocab, prompt)
    assert len(ids) >= 5, f"premise: the guest generates a few tokens, got {ids}"
    model = Transformer(tmp_path / "model.bin")
    check = check_generation(model, prompt_ids, ids, temperature, topp, seed, steps=steps,
                             vocab=vocab)
    assert check.ok, check.describe()
    assert check.steps_checked == len(ids)
    # and the check is not vacuous: a changed token is caught at its step
    k = len(ids) // 2
    wrong = [*ids[:k], 2 + (ids[k] + 7) % (HOST_CONFIG.vocab_size - 3) + 1, *ids[k + 1:]]
    bad = check_generation(model, prompt_ids, wrong, temperature, topp, seed, vocab=vocab)
    assert bad.first_divergence is not None and bad.first_divergence.step == k, bad.describe()

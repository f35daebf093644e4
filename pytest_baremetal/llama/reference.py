"""The host reference: llama2.c's forward pass in NumPy, generation, and teacher forcing.

`check_generation` replays what a guest generated: at every step it computes the reference
logits for the guest's own context (teacher forcing), decides whether the guest's token is
acceptable there, then feeds the guest's token. Float32 results legitimately differ between
the guest and NumPy (summation order, FMA), so near-ties are accepted; see
`DEFAULT_TOLERANCE`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pytest_baremetal.llama import checkpoint as ckpt
from pytest_baremetal.llama.sampler import Draw, Sampler, topp_order
from pytest_baremetal.llama.tokenizer_file import BOS, EOS, Vocabulary

FloatArray = npt.NDArray[np.float32]

RMS_EPS = 1e-5
ROPE_THETA = 10000.0

#: Relative logit tolerance. The absolute tolerance at a step is
#: `tolerance * max(1, max|logit|)`: float32 rounding differences between two correct
#: implementations (summation order, FMA, expf) scale with the magnitudes summed, which the
#: largest logit tracks; the floor of 1 covers near-zero logits. It bounds how much the
#: gap between two logits may differ between guest and reference. Measured: this float32
#: forward differs from a float64 one by at most 3e-6 of max|logit| (15M shape, 64
#: positions), so two float32 implementations differ by ~6e-6; 1e-4 leaves a ~15x margin
#: while a token picked by a real bug almost never lies that close to the max.
DEFAULT_TOLERANCE = 1e-4

#: Extra slack on the sampling coin for the guest's sequential float32 running sums.
COIN_SLACK = 1e-5


def rmsnorm(x: FloatArray, weight: FloatArray) -> FloatArray:
    """llama2.c's RMSNorm: weight * x / sqrt(mean(x^2) + 1e-5)."""
    ss = np.float32(np.dot(x, x) / np.float32(len(x)) + np.float32(RMS_EPS))
    out: FloatArray = (weight * (x * np.float32(1.0 / math.sqrt(float(ss))))).astype(np.float32)
    return out


def rope_angles(seq_len: int, head_size: int) -> tuple[FloatArray, FloatArray]:
    """cos and sin tables, shape (seq_len, head_size/2): angle pos * 10000^(-i/head_size)
    for the pair (i, i+1), computed in float64 and rounded to float32 (as the guest does;
    llama2.c's float32 angles differ by up to ~1e-5 rad at pos 255)."""
    pair = np.arange(0, head_size, 2, dtype=np.float64)
    freq = ROPE_THETA ** (-pair / head_size)
    angle = np.arange(seq_len, dtype=np.float64)[:, None] * freq[None, :]
    return np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)


def rope(vec: FloatArray, cos: FloatArray, sin: FloatArray) -> FloatArray:
    """Rotates the interleaved pairs (i, i+1) of each head; cos/sin are one table row."""
    heads = vec.reshape(-1, len(cos), 2)
    v0, v1 = heads[:, :, 0], heads[:, :, 1]
    out = np.empty_like(heads)
    out[:, :, 0] = v0 * cos - v1 * sin
    out[:, :, 1] = v0 * sin + v1 * cos
    return out.reshape(vec.shape)


class Model(Protocol):
    """What generation and teacher forcing need; `Transformer` is the real one."""

    @property
    def config(self) -> ckpt.Config: ...

    def reset(self) -> None: ...

    def forward(self, token: int, pos: int) -> FloatArray: ...


class Transformer:
    """llama2.c's forward pass, one token at a time, with a KV cache."""

    def __init__(self, model: ckpt.Checkpoint | Path | str) -> None:
        self.checkpoint = model if isinstance(model, ckpt.Checkpoint) else ckpt.load(model)
        c = self.checkpoint.config
        w = self.checkpoint.weights
        f32 = np.float32
        self.embedding = np.ascontiguousarray(w["token_embedding"], dtype=f32)
        self.classifier = np.ascontiguousarray(self.checkpoint.classifier, dtype=f32)
        # q, k, v stacked into one matrix per layer, and w1 with w3: fewer BLAS calls.
        self.wqkv = [np.ascontiguousarray(np.concatenate([w["wq"][i], w["wk"][i], w["wv"][i]]),
                                          dtype=f32) for i in range(c.n_layers)]
        self.wo = [np.ascontiguousarray(w["wo"][i], dtype=f32) for i in range(c.n_layers)]
        self.w13 = [np.ascontiguousarray(np.concatenate([w["w1"][i], w["w3"][i]]), dtype=f32)
                    for i in range(c.n_layers)]
        self.w2 = [np.ascontiguousarray(w["w2"][i], dtype=f32) for i in range(c.n_layers)]
        self.rms_att = np.asarray(w["rms_att"], dtype=f32)
        self.rms_ffn = np.asarray(w["rms_ffn"], dtype=f32)
        self.rms_final = np.asarray(w["rms_final"], dtype=f32)
        self.cos, self.sin = rope_angles(c.seq_len, c.head_size)
        shape = (c.n_layers, c.n_kv_heads, c.seq_len, c.head_size)
        self.key_cache = np.zeros(shape, dtype=f32)
        self.value_cache = np.zeros(shape, dtype=f32)
        self.scale = np.float32(1.0 / math.sqrt(c.head_size))

    @property
    def config(self) -> ckpt.Config:
        return self.checkpoint.config

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def reset(self) -> None:
        """Clears the KV cache: the next sequence starts at position 0."""
        self.key_cache.fill(0.0)
        self.value_cache.fill(0.0)

    def forward(self, token: int, pos: int) -> FloatArray:
        """Logits for the token after `token` at position `pos` (0 .. seq_len-1).

        Positions 0..pos-1 must have been fed before, in order."""
        c = self.config
        if not 0 <= token < c.vocab_size:
            raise ValueError(f"token {token} outside the vocabulary (0..{c.vocab_size - 1})")
        if not 0 <= pos < c.seq_len:
            raise ValueError(f"position {pos} outside 0..{c.seq_len - 1}")
        dim, kv_dim, hs = c.dim, c.kv_dim, c.head_size
        rep = c.n_heads // c.n_kv_heads
        cos, sin = self.cos[pos], self.sin[pos]
        x = self.embedding[token].copy()
        for layer in range(c.n_layers):
            xb = rmsnorm(x, self.rms_att[layer])
            qkv = self.wqkv[layer] @ xb
            q = rope(qkv[:dim], cos, sin)
            k = rope(qkv[dim : dim + kv_dim], cos, sin)
            kc, vc = self.key_cache[layer], self.value_cache[layer]
            kc[:, pos, :] = k.reshape(c.n_kv_heads, hs)
            vc[:, pos, :] = qkv[dim + kv_dim :].reshape(c.n_kv_heads, hs)
            qh = q.reshape(c.n_kv_heads, rep, hs)
            keys, values = kc[:, : pos + 1, :], vc[:, : pos + 1, :]
            scores = (qh @ keys.transpose(0, 2, 1)) * self.scale  # (kv, rep, pos+1)
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            att = (scores @ values).reshape(dim)
            x += self.wo[layer] @ att
            xb = rmsnorm(x, self.rms_ffn[layer])
            h13 = self.w13[layer] @ xb
            h1, h3 = h13[: c.hidden_dim], h13[c.hidden_dim :]
            silu = h1 * (np.float32(0.5) + np.float32(0.5) * np.tanh(np.float32(0.5) * h1))
            x += self.w2[layer] @ (silu * h3)
        return (self.classifier @ rmsnorm(x, self.rms_final)).astype(np.float32)


def max_new_tokens(config: ckpt.Config, n_prompt: int, steps: int) -> int:
    """How many tokens a generation may produce: `steps`, capped so that every token is
    predicted at a position below seq_len (the last one is never fed back)."""
    return max(0, min(steps, config.seq_len - n_prompt + 1))


def _check_prompt(transformer: Model, prompt_ids: Sequence[int]) -> None:
    c = transformer.config
    if not prompt_ids:
        raise ValueError("the prompt has no ids (it should start with BOS)")
    if len(prompt_ids) > c.seq_len:
        raise ValueError(f"the prompt has {len(prompt_ids)} ids but seq_len is {c.seq_len}")
    bad = [t for t in prompt_ids if not 0 <= t < c.vocab_size]
    if bad:
        raise ValueError(f"prompt ids {bad} outside the vocabulary (0..{c.vocab_size - 1})")


def prefill(transformer: Model, prompt_ids: Sequence[int]) -> FloatArray:
    """Feeds the prompt at positions 0..n-1; returns the logits after its last id."""
    _check_prompt(transformer, prompt_ids)
    transformer.reset()
    logits = np.empty(0, dtype=np.float32)
    for pos, token in enumerate(prompt_ids):
        logits = transformer.forward(int(token), pos)
    return logits


def generate(transformer: Model, prompt_ids: Sequence[int], steps: int,
             sampler: Sampler) -> list[int]:
    """The guest's generation loop: the generated ids, prompt excluded, BOS/EOS not included.

    Uses `sampler` as it is: make a fresh one per repeat, as the guest does."""
    logits = prefill(transformer, prompt_ids)
    limit = max_new_tokens(transformer.config, len(prompt_ids), steps)
    out: list[int] = []
    pos = len(prompt_ids) - 1
    while len(out) < limit:
        token = sampler.sample(logits)
        if token in (BOS, EOS):
            break
        out.append(token)
        pos += 1
        if len(out) < limit:
            logits = transformer.forward(token, pos)
    return out


# --- teacher forcing -----------------------------------------------------------------------


def piece_text(vocab: Vocabulary | None, token: int) -> str | None:
    """The raw piece of a token, for messages (byte pieces stay as `<0xHH>`)."""
    if vocab is None or not 0 <= token < len(vocab):
        return None
    return vocab.pieces[token].decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Candidate:
    """A token as the reference sees it at one step."""

    token: int
    logit: float
    prob: float
    rank: int  # 1 = the reference's argmax
    piece: str | None = None

    def describe(self) -> str:
        piece = f" {self.piece!r}" if self.piece is not None else ""
        return (f"#{self.rank} id {self.token}{piece} logit {self.logit:.6f} "
                f"p {self.prob:.6f}")


@dataclass(frozen=True)
class Divergence:
    """The first step where the guest's token is not acceptable."""

    step: int  # index into the guest's generated ids
    position: int  # position of the forward pass that predicted it
    guest_token: int | None  # None: the guest stopped here
    reference_token: int | None  # the reference's pick (argmax, or the replayed sample)
    reason: str
    reference_top: tuple[Candidate, ...]
    guest: Candidate | None  # the guest's token in the reference distribution
    reference: Candidate | None  # the reference's token (sampled ones may be off the top)
    tolerance: float  # absolute logit tolerance used at this step
    temperature: float
    topp: float
    seed: int
    coin: float | None = None
    coin_tolerance: float | None = None
    context: tuple[int, ...] = ()
    context_text: str | None = None

    def describe(self) -> str:
        guest = "stopped" if self.guest_token is None else f"token {self.guest_token}"
        ref = "" if self.reference_token is None else f", reference token {self.reference_token}"
        lines = [f"generation diverged at step {self.step} (position {self.position}): "
                 f"guest {guest}{ref}",
                 f"  reason: {self.reason}"]
        if self.temperature == 0.0:
            lines.append(f"  greedy; logit tolerance {self.tolerance:.3g}")
        else:
            coin = "-" if self.coin is None else f"{self.coin:.7f}"
            ctol = "-" if self.coin_tolerance is None else f"{self.coin_tolerance:.3g}"
            lines.append(f"  sampling temperature={self.temperature:g} topp={self.topp:g} "
                         f"seed={self.seed}; coin {coin} (tolerance {ctol}); "
                         f"logit tolerance {self.tolerance:.3g}")
        if self.reference is not None:
            lines.append(f"  reference's token: {self.reference.describe()}")
        if self.guest is not None:
            gap = self.reference_top[0].logit - self.guest.logit if self.reference_top else 0.0
            lines.append(f"  guest's token in the reference: {self.guest.describe()} "
                         f"(gap to the max {gap:.6f})")
        if self.reference_top:
            lines.append("  reference top candidates:")
            lines.extend(f"    {c.describe()}" for c in self.reference_top)
        if self.context:
            text = f" {self.context_text!r}" if self.context_text is not None else ""
            lines.append(f"  context (last {len(self.context)} ids): "
                         f"{list(self.context)}{text}")
        return "\n".join(lines)


@dataclass(frozen=True)
class GenerationCheck:
    """Outcome of `check_generation`."""

    ok: bool
    steps_checked: int
    first_divergence: Divergence | None
    reference_ids: tuple[int, ...] = ()  # the reference's pick at each checked step
    near_ties: tuple[int, ...] = field(default=())  # steps accepted only by the tolerance

    def describe(self) -> str:
        if self.first_divergence is not None:
            return self.first_divergence.describe()
        ties = f", {len(self.near_ties)} near-tie(s) at steps {list(self.near_ties)}" \
            if self.near_ties else ""
        return f"generation matches the reference: {self.steps_checked} steps checked{ties}"


def absolute_tolerance(logits: FloatArray, tolerance: float) -> float:
    """The absolute logit tolerance at one step: relative `tolerance` times max(1, max|logit|)."""
    return tolerance * max(1.0, float(np.abs(logits).max()))


def _tie_groups(sorted_probs: npt.NDArray[np.float64], delta: float) -> npt.NDArray[np.int64]:
    """Group number of each sorted position; neighbours whose ratio is within 1 + delta
    (an order the logit tolerance could swap) share a group."""
    if delta <= 0.0 or len(sorted_probs) < 2:
        return np.arange(len(sorted_probs), dtype=np.int64)
    breaks = sorted_probs[:-1] > sorted_probs[1:] * (1.0 + delta)
    return np.concatenate([[0], np.cumsum(breaks)]).astype(np.int64)


def _reach(cdf: npt.NDArray[np.float64], r: float) -> int:
    above = cdf > r
    return int(np.argmax(above)) if bool(above.any()) else len(cdf) - 1


def _sampling_acceptable(sampler: Sampler, probs: FloatArray, coin: float, token: int,
                         delta: float, coin_tol: float) -> bool:
    """Whether some perturbation of the probabilities (each by a factor within 1 +- delta,
    cumulative sums within coin_tol) lets the coin select `token`."""
    p = probs.astype(np.float64)
    if not sampler.uses_topp:
        cdf = np.cumsum(p)
        return _reach(cdf, coin - coin_tol) <= token <= _reach(cdf, coin + coin_tol)
    order = topp_order(probs, sampler.topp, cutoff_scale=1.0 / (1.0 + delta))
    where = np.flatnonzero(order == token)
    if len(where) == 0:
        return False
    at = int(where[0])
    sp = p[order]
    cum = np.cumsum(sp)
    groups = _tie_groups(sp, delta)
    topp = sampler.topp
    # The guest's prefix ends at the first sum above topp; its sums are within coin_tol of
    # ours, so it ends somewhere from the first sum above topp - coin_tol (or at the end).
    first = min(int(np.searchsorted(cum, topp - coin_tol, side="right")) + 1, len(sp))
    for k in range(first, len(sp) + 1):
        if k > first and cum[k - 2] > topp + coin_tol:
            break  # the guest's prefix already ended
        r = coin * cum[k - 1]
        lo = _reach(cum[:k], r - coin_tol)
        hi = _reach(cum[:k], r + coin_tol)
        if groups[lo] <= groups[at] <= groups[hi]:
            return True
    return False


def _candidates(logits: FloatArray, probs: FloatArray, tokens: Sequence[int],
                vocab: Vocabulary | None) -> tuple[Candidate, ...]:
    out = []
    for t in tokens:
        value = logits[t]
        rank = int(np.count_nonzero(logits > value) + np.count_nonzero(logits[:t] == value)) + 1
        out.append(Candidate(int(t), float(value), float(probs[t]), rank, piece_text(vocab, t)))
    return tuple(out)


def top_candidates(logits: FloatArray, probs: FloatArray, vocab: Vocabulary | None = None,
                   count: int = 5) -> tuple[Candidate, ...]:
    """The `count` largest logits, the lower id first on ties."""
    order = np.argsort(-logits, kind="stable")[:count]
    return _candidates(logits, probs, [int(t) for t in order], vocab)


def _acceptable(sampler: Sampler, draw: Draw, logits: FloatArray, token: int,
                atol: float) -> bool:
    if token == draw.token:
        return True
    if draw.coin is None:
        return float(logits.max()) - float(logits[token]) <= atol
    delta = math.expm1(atol / sampler.temperature)
    return _sampling_acceptable(sampler, draw.probs, draw.coin, token, delta,
                                coin_tolerance(delta))


def coin_tolerance(delta: float) -> float:
    """How far the guest's coin-space boundaries may sit from the reference's: the prefix
    sums and the top-p prefix total each move by at most delta, plus float32 slack."""
    return 2.0 * delta + COIN_SLACK


def check_generation(transformer: Model, prompt_ids: Sequence[int],
                     guest_ids: Sequence[int], temperature: float = 0.0, topp: float = 0.9,
                     seed: int = 42, tolerance: float = DEFAULT_TOLERANCE, *,
                     steps: int | None = None, vocab: Vocabulary | None = None
                     ) -> GenerationCheck:
    """Teacher-forces the guest's ids through the reference and checks each one.

    Greedy: the guest's token must be the argmax or within the step's absolute tolerance
    `atol` (`absolute_tolerance`) of the max logit. Sampling: the sampler is replayed with
    the reference probabilities; the guest's token must be the sampled one, or one the coin
    selects when moved by `coin_tolerance(expm1(atol / temperature))` (near-tied
    probabilities may swap order in top-p). Then the guest's token is fed. With `steps`, a
    guest that stopped before `max_new_tokens` must have stopped where EOS or BOS is
    acceptable, and may not produce more. `vocab` adds pieces to the messages."""
    sampler = Sampler(transformer.config.vocab_size, temperature, topp, seed)
    c = transformer.config
    logits = prefill(transformer, prompt_ids)
    n = len(prompt_ids)
    fed = [int(t) for t in prompt_ids]
    reference: list[int] = []
    ties: list[int] = []
    count = len(guest_ids)
    cap = max_new_tokens(c, n, steps if steps is not None else c.seq_len)

    def diverge(step: int, guest: int | None, reason: str, draw: Draw | None = None,
                atol: float = 0.0) -> GenerationCheck:
        context = tuple(fed[-8:])
        text = None
        if vocab is not None:
            text = "".join(piece_text(vocab, t) or "" for t in context)
        top: tuple[Candidate, ...] = ()
        mine: Candidate | None = None
        theirs: Candidate | None = None
        coin_tol = None
        if draw is not None:
            top = top_candidates(logits, draw.probs, vocab)
            theirs = _candidates(logits, draw.probs, [draw.token], vocab)[0]
            if guest is not None and 0 <= guest < c.vocab_size:
                mine = _candidates(logits, draw.probs, [guest], vocab)[0]
            if draw.coin is not None:
                coin_tol = coin_tolerance(math.expm1(atol / sampler.temperature))
        div = Divergence(
            step=step, position=n - 1 + step, guest_token=guest,
            reference_token=None if draw is None else draw.token, reason=reason,
            reference_top=top, guest=mine, reference=theirs, tolerance=atol,
            temperature=sampler.temperature, topp=sampler.topp, seed=seed,
            coin=None if draw is None else draw.coin, coin_tolerance=coin_tol,
            context=context, context_text=text)
        return GenerationCheck(False, step, div, tuple(reference), tuple(ties))

    for step in range(count + 1):
        stopped = step == count
        if stopped and (steps is None or count >= cap):
            break
        if not stopped and step >= cap:
            limit = "seq_len" if steps is None or cap < steps else f"steps={steps}"
            return diverge(step, int(guest_ids[step]),
                           f"the guest generated more tokens ({count}) than {limit} allows "
                           f"({cap} after a {n}-id prompt with seq_len={c.seq_len})")
        if step > 0:
            logits = transformer.forward(fed[-1], n - 1 + step)
        draw = sampler.draw(logits)
        atol = absolute_tolerance(logits, tolerance)
        if stopped:
            if _acceptable(sampler, draw, logits, EOS, atol) or \
                    _acceptable(sampler, draw, logits, BOS, atol):
                break
            return diverge(step, None, f"the guest stopped after {count} tokens (expected "
                           f"{cap}), but neither EOS nor BOS is acceptable here", draw, atol)
        reference.append(draw.token)
        guest = int(guest_ids[step])
        if not 0 <= guest < c.vocab_size:
            return diverge(step, guest, f"id outside the vocabulary (0..{c.vocab_size - 1})",
                           draw, atol)
        if guest in (BOS, EOS):
            return diverge(step, guest, "BOS/EOS ends the generation and is never printed",
                           draw, atol)
        if not _acceptable(sampler, draw, logits, guest, atol):
            why = ("not the argmax, and further than the tolerance from the max logit"
                   if sampler.greedy else
                   "not what the replayed coin selects, even within the coin tolerance")
            return diverge(step, guest, why, draw, atol)
        if guest != draw.token:
            ties.append(step)
        fed.append(guest)
    return GenerationCheck(True, count, None, tuple(reference), tuple(ties))

"""The reference check for builds that print text, not token ids.

The guest's text is segmented into tokens guided by the reference: at each step the
reference's pick (or a token the tolerance accepts as a near-tie) must be what the text
continues with. The first step where none is reports the agreed text, the reference's token
and the guest's text there, with the token the guest most likely printed (the longest vocab
piece that starts its text). A fully segmented text is then teacher-forced through
:func:`check_generation` like printed ids, so stopping early or late is checked the same way.

Prompts are encoded as the build does: ``bpe`` (llama2.c's merges) or ``greedy`` (longest
vocabulary match from the left), named by the profile's ``reference: {encoder: ...}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pytest_baremetal.llama import bpe
from pytest_baremetal.llama.reference import (
    DEFAULT_TOLERANCE,
    GenerationCheck,
    Model,
    _acceptable,
    _candidates,
    absolute_tolerance,
    check_generation,
    max_new_tokens,
    prefill,
    top_candidates,
)
from pytest_baremetal.llama.sampler import Sampler
from pytest_baremetal.llama.tokenizer_file import BOS, BYTE_BASE, EOS, Vocabulary

ENCODERS = ("bpe", "greedy")
CANDIDATES = 16  # how many of the reference's top tokens may explain a near-tie


def encode_greedy(vocab: Vocabulary, text: str, bos: bool = True) -> list[int]:
    """Longest match from the left over the vocabulary's pieces (BOS and the dummy-prefix
    space as llama2.c's encoder; bytes no piece covers fall back to byte tokens)."""
    ids: dict[bytes, int] = {}
    for index, piece in enumerate(vocab.pieces):
        if index >= BYTE_BASE + 256 or index < BYTE_BASE:
            ids.setdefault(piece, index)
    longest = max((len(p) for p in ids), default=1)
    data = text.encode("utf-8")
    if data and b" " in ids:
        data = b" " + data
    out = [BOS] if bos else []
    at = 0
    while at < len(data):
        for size in range(min(longest, len(data) - at), 0, -1):
            found = ids.get(data[at:at + size])
            if found is not None and found not in (0, BOS, EOS):
                out.append(found)
                at += size
                break
        else:
            byte = data[at]
            out.append(BYTE_BASE + byte if BYTE_BASE + byte < len(vocab) else 0)
            at += 1
    return out


def encode(vocab: Vocabulary, text: str, encoder: str = "bpe") -> list[int]:
    """The prompt's ids as the build under test encodes them."""
    if encoder == "bpe":
        return bpe.encode(vocab, text)
    if encoder == "greedy":
        return encode_greedy(vocab, text)
    raise ValueError(f"unknown prompt encoder {encoder!r}: use one of {', '.join(ENCODERS)}")


@dataclass(frozen=True)
class TextCheck:
    """Outcome of :func:`check_text`: ``ok``, the segmentation and what went wrong."""

    ok: bool
    ids: tuple[int, ...]  # the guest's text as tokens, up to the first divergence
    agreed_text: str  # the text that matched the reference
    problem: str | None = None
    generation: GenerationCheck | None = None  # the teacher-forced check of `ids`

    def describe(self) -> str:
        if self.problem is not None:
            return self.problem
        assert self.generation is not None
        return f"text {self.generation.describe()}"


def _likely_token(vocab: Vocabulary, prev: int, rest: bytes) -> tuple[int, bytes] | None:
    """The token whose printed piece is the longest start of ``rest``."""
    best: tuple[int, bytes] | None = None
    for token in range(len(vocab)):
        if token in (0, BOS, EOS):
            continue
        piece = bpe.decode_piece(vocab, prev, token)
        if piece and rest.startswith(piece) and (best is None or len(piece) > len(best[1])):
            best = (token, piece)
    return best


def _fits(piece: bytes, data: bytes, at: int) -> bool:
    """The piece continues the text (its tail may be whitespace the console trimmed)."""
    if not piece:
        return False
    rest = data[at:]
    if rest.startswith(piece):
        return True
    return len(rest) < len(piece) and piece.startswith(rest) and not piece[len(rest):].strip()


def check_text(transformer: Model, vocab: Vocabulary, prompt_ids: Sequence[int], text: str,
               temperature: float = 0.0, topp: float = 0.9, seed: int = 42,
               tolerance: float = DEFAULT_TOLERANCE, *, steps: int | None = None
               ) -> TextCheck:
    """Segments the guest's generated ``text`` guided by the reference, then checks it."""
    c = transformer.config
    sampler = Sampler(c.vocab_size, temperature, topp, seed)
    data = text.encode("utf-8")
    logits = prefill(transformer, prompt_ids)
    n = len(prompt_ids)
    cap = max_new_tokens(c, n, steps if steps is not None else c.seq_len)
    prev = int(prompt_ids[-1])
    ids: list[int] = []
    at = 0
    step = 0
    while at < len(data) and data[at:].strip():
        if step >= cap:
            return TextCheck(False, tuple(ids), data[:at].decode("utf-8", "replace"),
                             f"text continues after the {cap} tokens the reference allows "
                             f"(steps={steps}, seq_len={c.seq_len}): "
                             f"{data[at:at + 60].decode('utf-8', 'replace')!r}")
        if step > 0:
            logits = transformer.forward(ids[-1], n - 1 + step)
        draw = sampler.draw(logits)
        atol = absolute_tolerance(logits, tolerance)
        order = [draw.token] + [int(t) for t in np.argsort(-logits)[:CANDIDATES]
                                if int(t) != draw.token]
        chosen: tuple[int, bytes] | None = None
        for token in order:
            if token in (BOS, EOS):
                continue
            if token != draw.token and not _acceptable(sampler, draw, logits, token, atol):
                continue
            piece = bpe.decode_piece(vocab, prev, token)
            if _fits(piece, data, at):
                chosen = (token, piece)
                break
        if chosen is None:
            return TextCheck(False, tuple(ids), data[:at].decode("utf-8", "replace"),
                             _divergence(vocab, step, prev, data, at, draw.token, logits,
                                         draw.probs))
        ids.append(chosen[0])
        prev = chosen[0]
        at += len(chosen[1])
        step += 1
    generation = check_generation(transformer, prompt_ids, ids, temperature, topp, seed,
                                  tolerance, steps=steps, vocab=vocab)
    problem = None if generation.ok else f"text segmented into {len(ids)} tokens, then " \
        f"{generation.describe()}"
    return TextCheck(generation.ok, tuple(ids), text, problem, generation)


def _divergence(vocab: Vocabulary, step: int, prev: int, data: bytes, at: int,
                expected: int, logits: np.ndarray, probs: np.ndarray) -> str:
    said = data[at:at + 40].decode("utf-8", "replace")
    agreed = data[:at].decode("utf-8", "replace")
    want = bpe.decode_piece(vocab, prev, expected).decode("utf-8", "replace")
    lines = [f"text diverged at step {step} (byte {at}): the reference expects token "
             f"{expected} {want!r}, the guest printed {said!r}",
             f"  agreed text: {agreed[-80:]!r}"]
    likely = _likely_token(vocab, prev, data[at:])
    if likely is not None:
        cand = _candidates(logits, probs, [likely[0]], vocab)[0]
        lines.append(f"  the guest's token is most likely {cand.describe()}")
    lines.append("  reference top candidates:")
    lines += [f"    {cand.describe()}" for cand in top_candidates(logits, probs, vocab)]
    return "\n".join(lines)

"""The guest's random numbers and token sampling, as guest/MARKERS.md specifies them.

Arithmetic follows the C guest: float32 probabilities, sequential float32 running sums, a
float32 coin. `Sampler.sample` draws one coin per call when the temperature is not zero
(greedy draws none), exactly as the guest does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

MASK64 = (1 << 64) - 1
MULTIPLIER = 0x2545F4914F6CDD1D


class Rng:
    """xorshift64* with a 32-bit output: state is a uint64 set to the seed."""

    def __init__(self, seed: int) -> None:
        self.state = seed & MASK64

    def next_u32(self) -> int:
        s = self.state
        s ^= s >> 12
        s ^= (s << 25) & MASK64
        s ^= s >> 27
        self.state = s
        return ((s * MULTIPLIER) & MASK64) >> 32

    def next_f32(self) -> float:
        """A float32 in [0, 1): the top 24 bits of next_u32 over 2**24 (exact in float32)."""
        return (self.next_u32() >> 8) / 16777216.0


def argmax(logits: npt.ArrayLike) -> int:
    """The index of the largest value, the lowest on ties."""
    return int(np.argmax(np.asarray(logits)))


def softmax(logits: npt.ArrayLike, temperature: float = 1.0) -> FloatArray:
    """float32 softmax of logits / temperature, summed sequentially like the C guest."""
    x = np.asarray(logits, dtype=np.float32)
    if temperature != 1.0:
        x = x / np.float32(temperature)
    e = np.exp(x - x.max(), dtype=np.float32)
    total = np.cumsum(e, dtype=np.float32)[-1]
    probs: FloatArray = (e / total).astype(np.float32)
    return probs


def first_exceeding(cdf: FloatArray, r: float) -> int:
    """The first index whose running sum exceeds r, the last index if none does."""
    above = cdf > np.float32(r)
    return int(np.argmax(above)) if bool(above.any()) else len(cdf) - 1


def topp_order(probs: FloatArray, topp: float, cutoff_scale: float = 1.0) -> IntArray:
    """Candidate indices (probability >= (1-topp)/(n-1), scaled by cutoff_scale), sorted by
    probability descending, the lower id first on ties."""
    n = len(probs)
    cutoff = np.float32((np.float32(1.0) - np.float32(topp)) / np.float32(max(n - 1, 1)))
    candidates = np.flatnonzero(probs >= np.float32(cutoff * np.float32(cutoff_scale)))
    order = np.argsort(-probs[candidates], kind="stable")
    return candidates[order].astype(np.int64)


def prefix_length(sorted_probs: FloatArray, topp: float) -> int:
    """Length of the shortest prefix whose cumulative probability exceeds topp (all if none)."""
    cum = np.cumsum(sorted_probs, dtype=np.float32)
    above = cum > np.float32(topp)
    return int(np.argmax(above)) + 1 if bool(above.any()) else len(sorted_probs)


def sample_multinomial(probs: FloatArray, coin: float) -> int:
    return first_exceeding(np.cumsum(probs, dtype=np.float32), coin)


def sample_topp(probs: FloatArray, topp: float, coin: float) -> int:
    order = topp_order(probs, topp)
    if len(order) == 0:  # only possible with NaN probabilities
        return argmax(probs)
    kept = probs[order[: prefix_length(probs[order], topp)]]
    cdf = np.cumsum(kept, dtype=np.float32)
    r = np.float32(coin) * cdf[-1]
    return int(order[first_exceeding(cdf, float(r))])


@dataclass
class Draw:
    """One sampling decision: the token, and the coin and probabilities it came from."""

    token: int
    coin: float | None
    probs: FloatArray


class Sampler:
    """Greedy (temperature 0), multinomial, or top-p sampling with the guest's RNG."""

    def __init__(self, vocab_size: int, temperature: float = 0.0, topp: float = 0.9,
                 seed: int = 42) -> None:
        if vocab_size <= 0:
            raise ValueError(f"vocab_size={vocab_size} must be positive")
        if temperature < 0:
            raise ValueError(f"temperature={temperature} must not be negative")
        self.vocab_size = vocab_size
        self.temperature = float(np.float32(temperature))
        self.topp = float(np.float32(topp))
        self.seed = seed
        self.rng = Rng(seed)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def uses_topp(self) -> bool:
        return 0.0 < self.topp < 1.0

    def probabilities(self, logits: npt.ArrayLike) -> FloatArray:
        """The distribution sampled from: softmax(logits / temperature), or T=1 when greedy."""
        return softmax(logits, 1.0 if self.greedy else self.temperature)

    def choose(self, probs: FloatArray, coin: float) -> int:
        """The token a given coin selects from the given probabilities."""
        if self.uses_topp:
            return sample_topp(probs, self.topp, coin)
        return sample_multinomial(probs, coin)

    def draw(self, logits: npt.ArrayLike) -> Draw:
        """Samples one token and keeps the coin and probabilities for diagnostics."""
        values = np.asarray(logits, dtype=np.float32)
        if len(values) != self.vocab_size:
            raise ValueError(f"{len(values)} logits for a vocabulary of {self.vocab_size}")
        probs = self.probabilities(values)
        if self.greedy:
            return Draw(argmax(values), None, probs)
        coin = self.rng.next_f32()
        return Draw(self.choose(probs, coin), coin, probs)

    def sample(self, logits: npt.ArrayLike) -> int:
        return self.draw(logits).token

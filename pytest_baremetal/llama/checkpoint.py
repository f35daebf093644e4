"""The llama2.c checkpoint format: a header of seven int32 and float32 weights.

Header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len. A negative
vocab_size means the classifier is stored separately after the weights; otherwise it is
shared with the token embedding. Matrices are row-major (out, in).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

HEADER = struct.Struct("<7i")
FloatArray = npt.NDArray[np.float32]


class CheckpointError(ValueError):
    """A checkpoint file that does not follow the format; the message names the file."""


@dataclass(frozen=True)
class Config:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool = True

    @property
    def head_size(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.head_size * self.n_kv_heads

    def validate(self, where: str = "checkpoint") -> None:
        fields = {
            "dim": self.dim, "hidden_dim": self.hidden_dim, "n_layers": self.n_layers,
            "n_heads": self.n_heads, "n_kv_heads": self.n_kv_heads,
            "vocab_size": self.vocab_size, "seq_len": self.seq_len,
        }
        for key, value in fields.items():
            if value <= 0:
                raise CheckpointError(f"{where}: {key}={value} must be positive")
        if self.dim % self.n_heads:
            raise CheckpointError(
                f"{where}: dim={self.dim} is not a multiple of n_heads={self.n_heads}")
        if self.head_size % 2:
            raise CheckpointError(f"{where}: head size {self.head_size} must be even for RoPE")
        if self.n_heads % self.n_kv_heads:
            raise CheckpointError(
                f"{where}: n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}"
            )

    def weight_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Every tensor in file order (the unused RoPE tables included)."""
        L, d, h, kv = self.n_layers, self.dim, self.hidden_dim, self.kv_dim
        shapes: list[tuple[str, tuple[int, ...]]] = [
            ("token_embedding", (self.vocab_size, d)),
            ("rms_att", (L, d)),
            ("wq", (L, self.n_heads * self.head_size, d)),
            ("wk", (L, kv, d)),
            ("wv", (L, kv, d)),
            ("wo", (L, d, self.n_heads * self.head_size)),
            ("rms_ffn", (L, d)),
            ("w1", (L, h, d)),
            ("w2", (L, d, h)),
            ("w3", (L, h, d)),
            ("rms_final", (d,)),
            ("freq_cis_real", (self.seq_len, self.head_size // 2)),
            ("freq_cis_imag", (self.seq_len, self.head_size // 2)),
        ]
        if not self.shared_classifier:
            shapes.append(("wcls", (self.vocab_size, d)))
        return shapes

    def file_size(self) -> int:
        count = sum(int(np.prod(shape)) for _, shape in self.weight_shapes())
        return HEADER.size + 4 * count

    def param_count(self) -> int:
        skip = {"freq_cis_real", "freq_cis_imag"}
        return sum(int(np.prod(s)) for n, s in self.weight_shapes() if n not in skip)


@dataclass
class Checkpoint:
    config: Config
    weights: dict[str, FloatArray]

    @property
    def classifier(self) -> FloatArray:
        return self.weights["wcls"] if "wcls" in self.weights else self.weights["token_embedding"]


def read_config(path: Path) -> Config:
    with open(path, "rb") as f:
        raw = f.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise CheckpointError(f"{path}: {len(raw)} bytes, too short for the 28-byte header")
    dim, hidden, layers, heads, kv_heads, vocab, seq = HEADER.unpack(raw)
    config = Config(dim, hidden, layers, heads, kv_heads, abs(vocab), seq, vocab > 0)
    config.validate(str(path))
    return config


def load(path: Path | str) -> Checkpoint:
    """Reads a checkpoint, checking its size against its header."""
    path = Path(path)
    config = read_config(path)
    size = path.stat().st_size
    if size != config.file_size():
        raise CheckpointError(
            f"{path}: header implies {config.file_size()} bytes but the file has {size}"
        )
    data = np.memmap(path, dtype="<f4", mode="r", offset=HEADER.size)
    weights: dict[str, FloatArray] = {}
    offset = 0
    for name, shape in config.weight_shapes():
        count = int(np.prod(shape))
        weights[name] = np.asarray(data[offset : offset + count], dtype=np.float32).reshape(shape)
        offset += count
    return Checkpoint(config, weights)


def rope_tables(config: Config) -> tuple[FloatArray, FloatArray]:
    """The (unused by llama2.c's run.c) RoPE tables stored in the file."""
    half = config.head_size // 2
    freqs = 1.0 / (10000.0 ** (np.arange(0, half, dtype=np.float64) * 2 / config.head_size))
    angles = np.outer(np.arange(config.seq_len, dtype=np.float64), freqs)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def save(path: Path | str, config: Config, weights: dict[str, FloatArray]) -> None:
    """Writes weights (any missing RoPE tables are computed) in file order."""
    config.validate(str(path))
    real, imag = rope_tables(config)
    tables = {"freq_cis_real": real, "freq_cis_imag": imag}
    vocab = config.vocab_size if config.shared_classifier else -config.vocab_size
    with open(path, "wb") as f:
        f.write(HEADER.pack(config.dim, config.hidden_dim, config.n_layers, config.n_heads,
                            config.n_kv_heads, vocab, config.seq_len))
        for name, shape in config.weight_shapes():
            array = weights.get(name, tables.get(name))
            if array is None:
                raise CheckpointError(f"{path}: weight {name!r} missing")
            array = np.ascontiguousarray(array, dtype="<f4")
            if array.shape != shape:
                raise CheckpointError(f"{path}: weight {name!r} has shape {array.shape}, "
                                      f"expected {shape}")
            f.write(array.tobytes())


def random_weights(config: Config, seed: int = 0, scale: float = 0.02) -> dict[str, FloatArray]:
    """Gaussian weights of the right shapes (norm weights are ones), for speed tests."""
    rng = np.random.default_rng(seed)
    weights: dict[str, FloatArray] = {}
    for name, shape in config.weight_shapes():
        if name.startswith("freq_cis"):
            continue
        if name.startswith("rms"):
            weights[name] = np.ones(shape, dtype=np.float32)
        else:
            weights[name] = (rng.standard_normal(shape, dtype=np.float32) * scale)
    return weights

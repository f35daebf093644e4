"""Writes the small checkpoints and tokenizers the guest's tests read.

Usage: make_fixtures.py OUT_DIR. Uses the repository's llama2.c format helpers.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_baremetal.llama import checkpoint, tokenizer_file

MERGES = [b"he", b"th", b"the", b" t", b" the", b"in", b"ing", b"an", b"and", b" a",
          b" an", b"on", b"ce", b"Once", b"On", b"up", b" up", b"upon", b" upon", b"ti",
          b"me", b"time", b" time", b"ll", b"o ", b"\xc3\xa9"]


def vocabulary() -> tuple[list[bytes], list[float]]:
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"]
    pieces += [f"<0x{b:02X}>".encode() for b in range(256)]
    pieces += [bytes([c]) for c in range(32, 127)]
    pieces += MERGES
    scores = [0.0] * 259 + [-1000.0] * 95
    # Longer merges score higher, so "the" wins over "he"; ties keep file order.
    scores += [float(len(m)) - i * 0.01 for i, m in enumerate(MERGES)]
    return pieces, scores


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    pieces, scores = vocabulary()
    tokenizer_file.save(out / "tokenizer.bin", pieces, scores)
    vocab = len(pieces)
    configs = {
        "shared": checkpoint.Config(16, 40, 2, 4, 4, vocab, 48, True),
        "separate": checkpoint.Config(16, 40, 2, 4, 4, vocab, 48, False),
        "gqa": checkpoint.Config(32, 64, 2, 8, 2, vocab, 48, True),
    }
    for name, config in configs.items():
        weights = checkpoint.random_weights(config, seed=len(name), scale=0.5)
        checkpoint.save(out / f"model_{name}.bin", config, weights)
    # Heavy enough (about 1 ms per token) for timing checks to rise above noise.
    big = checkpoint.Config(128, 384, 4, 4, 4, vocab, 128, True)
    checkpoint.save(out / "model_big.bin", big, checkpoint.random_weights(big, seed=7))
    good = (out / "model_shared.bin").read_bytes()
    (out / "bad_truncated.bin").write_bytes(good[:-4])
    (out / "bad_too_large.bin").write_bytes(good + b"\0\0\0\0")
    (out / "bad_short.bin").write_bytes(good[:20])
    header = list(struct.unpack_from("<7i", good))
    (out / "bad_header.bin").write_bytes(struct.pack("<7i", -16, *header[1:]) + good[28:])
    (out / "bad_inconsistent.bin").write_bytes(
        struct.pack("<7i", *header[:3], 3, *header[4:]) + good[28:])
    (out / "bad_tokenizer.bin").write_bytes((out / "tokenizer.bin").read_bytes()[:100])


if __name__ == "__main__":
    main()

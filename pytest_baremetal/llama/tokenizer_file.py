"""The llama2.c tokenizer.bin format.

int32 max_token_length, then per token: float32 score, int32 byte length, the bytes.
The vocabulary size is not stored; it comes from the checkpoint header. Ids 0, 1, 2 are
<unk>, <s> (BOS), </s> (EOS); ids 3..258 are the byte-fallback tokens <0x00>..<0xFF>.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

BOS = 1
EOS = 2
BYTE_BASE = 3


class TokenizerFileError(ValueError):
    """A tokenizer file that does not follow the format; the message names the file."""


@dataclass(frozen=True)
class Vocabulary:
    pieces: tuple[bytes, ...]
    scores: tuple[float, ...]
    max_token_length: int

    def __len__(self) -> int:
        return len(self.pieces)


def load(path: Path | str, vocab_size: int) -> Vocabulary:
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < 4:
        raise TokenizerFileError(f"{path}: {len(raw)} bytes, too short for the header")
    (max_len,) = struct.unpack_from("<i", raw, 0)
    offset = 4
    pieces: list[bytes] = []
    scores: list[float] = []
    for index in range(vocab_size):
        if offset + 8 > len(raw):
            raise TokenizerFileError(f"{path}: truncated at token {index} of {vocab_size}")
        score, length = struct.unpack_from("<fi", raw, offset)
        offset += 8
        if length < 0 or length > max_len or offset + length > len(raw):
            raise TokenizerFileError(f"{path}: token {index} has bad length {length}")
        pieces.append(raw[offset : offset + length])
        scores.append(score)
        offset += length
    return Vocabulary(tuple(pieces), tuple(scores), max_len)


def save(path: Path | str, pieces: list[bytes], scores: list[float]) -> None:
    if len(pieces) != len(scores):
        raise TokenizerFileError(f"{path}: {len(pieces)} pieces but {len(scores)} scores")
    max_len = max((len(p) for p in pieces), default=0)
    with open(path, "wb") as f:
        f.write(struct.pack("<i", max_len))
        for piece, score in zip(pieces, scores, strict=True):
            f.write(struct.pack("<fi", score, len(piece)))
            f.write(piece)

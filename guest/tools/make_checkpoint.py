#!/usr/bin/env python3
"""Writes a random-weight llama2.c checkpoint of any shape and a matching tokenizer.

For speed and memory tests of the guest (the text it generates is gibberish):

    python3 guest/tools/make_checkpoint.py --shape 15M --out /tmp/m15
    python3 guest/tools/make_checkpoint.py --dim 64 --hidden-dim 176 --layers 2 --heads 4 \
        --kv-heads 2 --vocab 512 --seq-len 128 --out /tmp/small

The folder receives model.bin and tokenizer.bin. The tokenizer has <unk>, <s>, </s>, the 256
byte tokens, the printable ASCII characters (the space among them, needed for the dummy
prefix), then distinct synthetic pieces (" a", " b", ..., " aa", ...) up to the vocabulary
size; scores decrease with the id.
"""

from __future__ import annotations

import argparse
import string
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pytest_baremetal.llama import checkpoint, tokenizer_file

PRESETS: dict[str, dict[str, int]] = {
    "15M": {"dim": 288, "hidden_dim": 768, "layers": 6, "heads": 6, "kv_heads": 6,
            "vocab": 32000, "seq_len": 256},
    "110M": {"dim": 768, "hidden_dim": 2048, "layers": 12, "heads": 12, "kv_heads": 12,
             "vocab": 32000, "seq_len": 1024},
}
FIELDS = ["dim", "hidden_dim", "layers", "heads", "kv_heads", "vocab", "seq_len"]


def synthetic_pieces(vocab_size: int) -> list[bytes]:
    """vocab_size distinct pieces in llama2.c's layout."""
    pieces = [b"<unk>", b"<s>", b"</s>"] + [b"<0x%02X>" % b for b in range(256)]
    printable = [c.encode() for c in string.printable if c not in "\t\n\r\x0b\x0c"]
    pieces += printable
    if vocab_size < 259 + 1:
        raise ValueError(f"vocab_size={vocab_size}: needs at least 260 (special, byte and "
                         "space tokens)")
    letters = string.ascii_lowercase
    n = 0
    while len(pieces) < vocab_size:
        word = ""
        k = n
        while True:
            word = letters[k % 26] + word
            k = k // 26 - 1
            if k < 0:
                break
        pieces.append((" " + word).encode())
        n += 1
    return pieces[:vocab_size] if b" " in pieces[:vocab_size] else [*pieces[:vocab_size - 1], b" "]


def write(out: Path, config: checkpoint.Config, seed: int = 0) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    model = out / "model.bin"
    tokenizer = out / "tokenizer.bin"
    checkpoint.save(model, config, checkpoint.random_weights(config, seed=seed))
    pieces = synthetic_pieces(config.vocab_size)
    tokenizer_file.save(tokenizer, pieces, [-float(i) for i in range(len(pieces))])
    return model, tokenizer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--shape", choices=sorted(PRESETS), help="a preset shape")
    for field in FIELDS:
        parser.add_argument("--" + field.replace("_", "-"), type=int,
                            help="overrides the preset")
    parser.add_argument("--separate-classifier", action="store_true",
                        help="store a classifier matrix (negative vocab in the header)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    values = dict(PRESETS[args.shape]) if args.shape else {}
    for field in FIELDS:
        if getattr(args, field) is not None:
            values[field] = getattr(args, field)
    missing = [f for f in FIELDS if f not in values]
    if missing:
        parser.error("give --shape or all of: " + ", ".join("--" + f.replace("_", "-")
                                                              for f in missing))
    config = checkpoint.Config(values["dim"], values["hidden_dim"], values["layers"],
                               values["heads"], values["kv_heads"], values["vocab"],
                               values["seq_len"], shared_classifier=not args.separate_classifier)
    try:
        config.validate("shape")
        model, tokenizer = write(args.out, config, args.seed)
    except (ValueError, checkpoint.CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {model} ({model.stat().st_size} bytes, {config.param_count()} params) "
          f"and {tokenizer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A small random llama2.c checkpoint and a byte-level tokenizer, for booting the guest
before a trained model exists (make -C guest image uses it when guest/models/tiny/ is
empty). The text it generates is noise; the speed and the console path are real.

    python guest/tools/random_model.py --model build/random/model.bin \
        --tokenizer build/random/tokenizer.bin
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_baremetal.llama import checkpoint, tokenizer_file


def byte_vocabulary() -> tuple[list[bytes], list[float]]:
    """<unk>, BOS, EOS, the 256 byte tokens, then printable ASCII as single pieces."""
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"]
    pieces += [b"<0x%02X>" % byte for byte in range(256)]
    pieces += [bytes([c]) for c in range(0x20, 0x7F)]
    return pieces, [0.0] * len(pieces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=0.02,
                        help="weight standard deviation (0.02 repeats one letter greedily; "
                             "0.3 gives varied text, raw byte tokens and invalid UTF-8 included)")
    args = parser.parse_args()
    pieces, scores = byte_vocabulary()
    config = checkpoint.Config(dim=64, hidden_dim=172, n_layers=2, n_heads=4, n_kv_heads=4,
                               vocab_size=len(pieces), seq_len=128)
    args.model.parent.mkdir(parents=True, exist_ok=True)
    weights = checkpoint.random_weights(config, seed=args.seed, scale=args.scale)
    checkpoint.save(args.model, config, weights)
    tokenizer_file.save(args.tokenizer, pieces, scores)
    print(f"{args.model}: random {config}; {args.tokenizer}: {len(pieces)} pieces")


if __name__ == "__main__":
    main()

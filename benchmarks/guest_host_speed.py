"""Decode speed of the guest's host build, AVX2+FMA kernel against the portable one.

Makes a random checkpoint shaped like llama2.c's stories15M (dim 288, hidden 768, 6 layers,
6 heads, vocab 32000, seq 256) under guest/build/speed/ (not in git), builds the host guest,
runs it with kernel=avx2 and kernel=portable, and prints decode tok/s medians, their ratio
and the matmul GFLOP/s; then the kernel micro-benchmark (guest/build/host/kernel-bench), which
separates cache-resident shapes (compute-bound) from the 37 MB classifier (DRAM-bound).
The whole 15M checkpoint (61 MB) streams from DRAM for every token, so end-to-end decode is
bounded by memory bandwidth, not by the kernel.
Usage: python benchmarks/guest_host_speed.py [--repeats N] [--steps N]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_baremetal.llama import checkpoint, tokenizer_file  # noqa: E402

GUEST = ROOT / "guest"
WORK = GUEST / "build" / "speed"
CONFIG = checkpoint.Config(288, 768, 6, 6, 6, 32000, 256, True)


def make_files() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    model = WORK / "model.bin"
    if not model.exists() or model.stat().st_size != CONFIG.file_size():
        checkpoint.save(model, CONFIG, checkpoint.random_weights(CONFIG, seed=15))
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [f"<0x{b:02X}>".encode() for b in range(256)]
    pieces += [bytes([c]) for c in range(32, 127)]
    pieces += [f" w{i}".encode() for i in range(CONFIG.vocab_size - len(pieces))]
    tokenizer_file.save(WORK / "tokenizer.bin", pieces, [0.0] * len(pieces))


def flops_per_token() -> int:
    c = CONFIG
    per_layer = 2 * c.dim * c.dim + 2 * c.dim * c.kv_dim + 3 * c.dim * c.hidden_dim
    return 2 * (c.n_layers * per_layer + c.vocab_size * c.dim)


def run(kernel: str, repeats: int, steps: int) -> tuple[list[float], str]:
    cfg = WORK / f"{kernel}.cfg"
    cfg.write_text(
        f'bench=0\nkernel={kernel}\nrepeats={repeats}\nsteps={steps}\nprompt="Once upon a time"\n'
    )
    out = subprocess.run(
        [str(GUEST / "build/host/bm-guest"), str(cfg)], capture_output=True, text=True, check=True
    ).stdout
    speeds = [float(v) for v in re.findall(r"^\[perf\] repeat=.* decode_tok_s=([\d.]+)", out, re.M)]
    used = re.search(r"^\[cpu\] kernel=(\S+)", out, re.M)
    return speeds, used.group(1) if used else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    subprocess.run(["make", "-s", "-C", str(GUEST), "host", "kernel-bench"], check=True)
    make_files()
    flops = flops_per_token()
    medians = {}
    for kernel in ("avx2", "portable"):
        speeds, used = run(kernel, args.repeats, args.steps)
        medians[kernel] = statistics.median(speeds)
        print(
            f"{kernel:9s} (used {used}): decode tok/s median {medians[kernel]:.1f} "
            f"(min {min(speeds):.1f}, max {max(speeds):.1f}), "
            f"{medians[kernel] * flops / 1e9:.2f} GFLOP/s"
        )
    print(
        f"avx2 / portable decode speed ratio: {medians['avx2'] / medians['portable']:.2f}x "
        f"({flops / 1e6:.1f} MFLOP per token)"
    )
    print(f"weights streamed per token: {CONFIG.file_size() / 1e6:.1f} MB")
    subprocess.run([str(GUEST / "build/host/kernel-bench")], check=True)


if __name__ == "__main__":
    main()

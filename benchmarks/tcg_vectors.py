"""Vector instruction forms under QEMU TCG: 256 vs 128-bit, FMA vs mul+add, float vs int.

Builds benchmarks/tcg_vectors.c as a static Linux program (gcc), runs it natively and under
QEMU user mode (`qemu-x86_64 -cpu max`, Debian package qemu-user: the same TCG as
qemu-system), N times each, and prints per case the median milliseconds of a 1024x1024
matrix-vector product done 4 times, and each case's ratio to the 128-bit VEX FMA case.
Prints the host CPU and the QEMU version first. Skips (exit 0, with the reason) when gcc or
qemu-x86_64 is missing. No timed assertions.

    .venv/bin/python benchmarks/tcg_vectors.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hostinfo import host_cpu, qemu_version

SOURCE = Path(__file__).resolve().parent / "tcg_vectors.c"
REFERENCE = "float xmm vfmadd231ps (VEX)"


def run(cmd: list[str]) -> dict[str, float]:
    """One run of the program: case name -> milliseconds."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    times: dict[str, float] = {}
    for line in out.splitlines():
        name, ms, _ = line.split("|")
        times[name] = float(ms)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per mode (3); medians")
    args = ap.parse_args(argv)
    qemu = shutil.which("qemu-x86_64")
    gcc = shutil.which("gcc")
    if qemu is None or gcc is None:
        print(f"SKIP: {'qemu-x86_64 (apt-get install qemu-user)' if qemu is None else 'gcc'}"
              " not found")
        return 0
    with tempfile.TemporaryDirectory(prefix="bm-tcg-vectors-") as tmp:
        binary = str(Path(tmp) / "tcg_vectors")
        subprocess.run([gcc, "-O2", "-static", "-o", binary, str(SOURCE)], check=True)
        native: list[dict[str, float]] = []
        tcg: list[dict[str, float]] = []
        for _ in range(args.runs):  # interleaved, so drifting load hits both alike
            native.append(run([binary]))
            tcg.append(run([qemu, "-cpu", "max", binary]))
    print(f"host CPU: {host_cpu()}")
    print(f"QEMU: {qemu_version(qemu)} (user mode, -cpu max)")
    print(f"1024x1024 matrix-vector product x4 per case; medians of {args.runs} runs")
    print(f"    {'case':<38} {'native ms':>9} {'TCG ms':>8} {'TCG/native':>10} "
          f"{'TCG vs xmm FMA':>14}")
    ref = statistics.median(t[REFERENCE] for t in tcg)
    for name in tcg[0]:
        n = statistics.median(t[name] for t in native)
        q = statistics.median(t[name] for t in tcg)
        print(f"    {name:<38} {n:>9.1f} {q:>8.1f} {q / max(n, 0.05):>9.0f}x {q / ref:>13.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

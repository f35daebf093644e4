"""The reference guest against its anchors, side by side on the same checkpoints.

Prints, from ONE run (compare the ratios; the machine is shared), after the host CPU, the
QEMU version and the load average:

  (a) natively, one thread: our host build (guest/build/host/bm-guest, kernel=auto) against
      llama2.c's run.c built here as its `runfast` target (-Ofast) at -march=native and
      -march=skylake (--llama2c PATH: a llama2.c checkout; skipped, with the reason,
      without). Greedy, 200 steps, the same prompt; our decode tok/s (median of 3 repeats
      a process) against llama2.c's own `achieved tok/s`; processes interleaved;
  (b) under QEMU TCG (-cpu Skylake-Client and qemu64): our UEFI guest against the seeds'
      llm-baremetal guest (--llm-baremetal PATH: a checkout, built here with gnu-efi's
      `make`; skipped, with the reason, without). Both boot from a disk image composed the
      same way, with plain QEMU and OVMF, and are timed on the host from the arrival of
      their serial bytes: decode tok/s = (tokens - 1) / (last token's arrival - first
      token's arrival). Their guest is a REPL: the prompt is typed when `You: ` arrives.
      Sampling at temperature 1 without top-p/top-k (a random checkpoint under greedy
      decoding repeats one token, and their guest stops after 6 repeats). Boots alternate.

Checkpoints: random 15M-shaped ones (dim 288, 6 layers, 6 heads, seq 256) written once by
guest/tools/make_checkpoint.py into guest/build/speed15m-v<vocab>/, vocabulary 429 and 32000.

    .venv/bin/python benchmarks/anchors.py --llama2c ~/src/llama2.c \
        --llm-baremetal ~/src/llm-baremetal
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guest_speed import build_llama2c  # noqa: E402  (benchmarks/, the script's dir)
from hostinfo import host_cpu, qemu_version  # noqa: E402

from pytest_baremetal.firmware import find_firmware  # noqa: E402
from pytest_baremetal.image import compose_image  # noqa: E402
from pytest_baremetal.targets.qemu.command import firmware_args  # noqa: E402

GUEST = ROOT / "guest"
HOST_GUEST = GUEST / "build" / "host" / "bm-guest"
OUR_EFI = GUEST / "build" / "BOOTX64.EFI"
PROMPT = "Once upon a time"
PERF_RE = re.compile(r"^\[perf\] repeat=\S+ .*decode_tok_s=([\d.]+)", re.M)
KERNEL_RE = re.compile(rb"\[cpu\] kernel=(\S+) reason=(\S+)")
LLAMA2C_TOK_S = re.compile(r"achieved tok/s: ([\d.]+)")
CPUS = ("Skylake-Client", "qemu64")


def checkpoint(vocab: int) -> Path:
    """guest/build/speed15m-v<vocab>/{model,tokenizer}.bin, written once."""
    folder = GUEST / "build" / f"speed15m-v{vocab}"
    if not (folder / "model.bin").is_file() or not (folder / "tokenizer.bin").is_file():
        subprocess.run([sys.executable, str(GUEST / "tools" / "make_checkpoint.py"),
                        "--shape", "15M", "--vocab", str(vocab), "--out", str(folder)],
                       check=True, stdout=subprocess.DEVNULL)
    return folder


def median_ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """Median of the per-round ratios (rounds ran back to back, so load hits both alike)."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def fmt_runs(values: Sequence[float]) -> str:
    return f"{statistics.median(values):8.2f}  ({', '.join(f'{v:.1f}' for v in values)})"


# -- (a) natively -----------------------------------------------------------------------------


def ours_native(model: Path, work: Path, steps: int) -> float:
    cfg = work / f"native-{model.name}.cfg"
    cfg.write_text(f"bench=0\nkernel=auto\nrepeats=3\nsteps={steps}\nprompt=\"{PROMPT}\"\n"
                   f"model={model / 'model.bin'}\ntokenizer={model / 'tokenizer.bin'}\n")
    out = subprocess.run([str(HOST_GUEST), str(cfg)], capture_output=True, text=True,
                         errors="replace", check=True).stdout
    speeds = [float(v) for v in PERF_RE.findall(out)]
    if not speeds:
        raise RuntimeError(f"host build printed no [perf] line:\n{out[-2000:]}")
    return statistics.median(speeds)


def llama2c_native(binary: Path, model: Path, steps: int) -> float:
    done = subprocess.run([str(binary), str(model / "model.bin"), "-z",
                           str(model / "tokenizer.bin"), "-t", "0", "-n", str(steps),
                           "-i", PROMPT], capture_output=True, text=True, errors="replace",
                          check=True)
    found = LLAMA2C_TOK_S.search(done.stderr)
    if found is None:
        raise RuntimeError(f"llama2.c printed no tok/s:\n{done.stderr[-1000:]}")
    return float(found.group(1))


def native(models: dict[int, Path], llama2c: dict[str, Path], rounds: int,
           work: Path) -> None:
    print(f"(a) natively, one thread, greedy, 200 steps; {rounds} interleaved rounds; "
          "tok/s median (each round)")
    for vocab, model in models.items():
        ours: list[float] = []
        theirs: dict[str, list[float]] = {march: [] for march in llama2c}
        for _ in range(rounds):
            ours.append(ours_native(model, work, 200))
            for march, binary in llama2c.items():
                theirs[march].append(llama2c_native(binary, model, 200))
        print(f"  vocab {vocab}")
        print(f"    our host build (kernel=auto)        {fmt_runs(ours)}")
        for march, values in theirs.items():
            print(f"    llama2.c -Ofast -march={march:<8}     {fmt_runs(values)}"
                  f"   ours / it {median_ratio(ours, values):.2f}x")


# -- (b) under QEMU TCG -----------------------------------------------------------------------
@dataclass
class Serial:
    """Every chunk read from a guest's serial console, with its host arrival time."""

    chunks: list[tuple[float, bytes]]

    @property
    def data(self) -> bytes:
        return b"".join(c for _, c in self.chunks)

    def arrival(self, offset: int) -> float:
        """Arrival time of the byte at offset of data."""
        at = 0
        for t, chunk in self.chunks:
            at += len(chunk)
            if offset < at:
                return t
        raise IndexError(offset)


def boot(image: Path, cpu: str, firmware: list[str], until: bytes, timeout: float,
         reply: tuple[bytes, bytes] | None = None) -> Serial:
    """Boots image under TCG with the serial console on a pipe until `until` arrives.

    reply (wait_for, text): types text (one key every 20 ms) once wait_for has arrived.
    """
    qemu = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-cpu", cpu, "-machine", "pc", "-m", "2G",
         "-smp", "1", *firmware, "-drive", f"file={image},format=raw,snapshot=on",
         "-net", "none", "-display", "none", "-monitor", "none", "-serial", "stdio"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert qemu.stdout is not None and qemu.stdin is not None
    chunks: list[tuple[float, bytes]] = []
    data = b""
    replied = reply is None
    mark = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{image.name} on {cpu}: no {until!r} within {timeout} s; "
                                   f"last output: {data[-400:]!r}")
            ready, _, _ = select.select([qemu.stdout], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(qemu.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"{image.name} on {cpu}: QEMU ended; last output: "
                                   f"{data[-400:]!r}")
            chunks.append((time.monotonic(), chunk))
            data += chunk
            if not replied and reply is not None and reply[0] in data:
                for key in reply[1]:
                    qemu.stdin.write(bytes([key]))
                    qemu.stdin.flush()
                    time.sleep(0.02)
                replied = True
                mark = len(data)
            if replied and until in data[mark:]:
                return Serial(chunks)
    finally:
        qemu.kill()
        qemu.wait()


@dataclass
class TcgRun:
    tok_s: float
    tokens: int
    note: str


def decode_rate(serial: Serial, begin: int, end: int, tokens: int, note: str) -> TcgRun:
    """Host-timed decode rate of the token text in data[begin:end]."""
    data = serial.data
    first = begin
    while first < end and data[first:first + 1] in (b"\r", b"\n"):
        first += 1
    last = end - 1
    while last > first and data[last:last + 1] in (b"\r", b"\n"):
        last -= 1
    span = serial.arrival(last) - serial.arrival(first)
    if tokens < 2 or span <= 0:
        raise RuntimeError(f"too few tokens or no time span ({tokens} tokens, {span:.3f} s)")
    return TcgRun((tokens - 1) / span, tokens, note)


def ours_tcg(image: Path, cpu: str, firmware: list[str], timeout: float) -> TcgRun:
    serial = boot(image, cpu, firmware, b"[done]", timeout)
    data = serial.data
    begin = data.index(b"\n", data.index(b"[gen] begin")) + 1
    end = data.index(b"[gen] end", begin)
    tokens = int(re.search(rb"\[gen\] end tokens=(\d+)", data).group(1))  # type: ignore[union-attr]
    kernel = KERNEL_RE.search(data)
    note = f"{kernel.group(1).decode()} ({kernel.group(2).decode()})" if kernel else "?"
    return decode_rate(serial, begin, end, tokens, note)


def theirs_tcg(image: Path, cpu: str, firmware: list[str], timeout: float) -> TcgRun:
    serial = boot(image, cpu, firmware, b"tok_s=", timeout,
                  reply=(b"You: ", PROMPT.encode() + b"\r"))
    data = serial.data
    answer = data.index(b"AI: ")
    # the first token follows the prefill's budget line
    begin = data.index(b"\n", data.index(b"prefill_max=", answer)) + 1
    end = data.index(b"[llmk][budget] final", begin)
    tokens = int(re.search(rb"\[stats\] tokens=(\d+)", data).group(1))  # type: ignore[union-attr]
    return decode_rate(serial, begin, end, tokens, "")


def build_llm_baremetal(checkout: Path, out: Path) -> Path:
    """Their guest built from a copy of the checkout with its own Makefile (gnu-efi)."""
    if not (checkout / "llama2_efi_final.c").is_file():
        raise SystemExit(f"--llm-baremetal {checkout}: no llama2_efi_final.c there")
    copy = out / "llm-baremetal"
    shutil.copytree(checkout, copy, ignore=shutil.ignore_patterns(".git", "*.o", "*.so",
                                                                    "*.efi", "*.bin"))
    make = subprocess.run(["make", "-C", str(copy), "repl"], capture_output=True, text=True)
    if make.returncode != 0:
        raise SystemExit(f"llm-baremetal build failed (needs gnu-efi: apt-get install "
                         f"gnu-efi):\n{(make.stdout + make.stderr)[-1500:]}")
    return copy / "llama2.efi"


def tcg(models: dict[int, Path], seed_efi: Path, boots: int, tokens: int, timeout: float,
        cpus: Sequence[str], work: Path) -> None:
    fw = find_firmware()
    firmware = firmware_args(fw, work)
    ours_cfg = work / "run.cfg"
    ours_cfg.write_text(f"bench=0\nrepeats=1\nsteps={tokens}\nkernel=auto\ntemperature=1.0\n"
                        f"topp=1.0\nseed=42\nprompt=\"{PROMPT}\"\n")
    theirs_cfg = work / "repl.cfg"
    theirs_cfg.write_text(f"temperature=1.0\nmin_p=0\ntop_p=1.0\ntop_k=0\nrepeat_penalty=1.0\n"
                          f"no_repeat_ngram=0\nmax_tokens={tokens}\nstats=1\nstop_you=0\n"
                          f"stop_nl=0\nseed=42\n")
    print(f"(b) under QEMU TCG ({fw.describe()}): {boots} interleaved boots per row, "
          f"{tokens} tokens, temperature 1; decode tok/s host-timed from serial arrival")
    for vocab, model in models.items():
        files = {"model.bin": model / "model.bin", "tokenizer.bin": model / "tokenizer.bin"}
        ours_img = compose_image(work / f"ours-{vocab}.img", OUR_EFI,
                                 {**files, "run.cfg": ours_cfg})
        theirs_img = compose_image(work / f"theirs-{vocab}.img", seed_efi,
                                   {**files, "repl.cfg": theirs_cfg})
        for cpu in cpus:
            ours: list[TcgRun] = []
            theirs: list[TcgRun] = []
            for _ in range(boots):
                ours.append(ours_tcg(ours_img, cpu, firmware, timeout))
                theirs.append(theirs_tcg(theirs_img, cpu, firmware, timeout))
                print(f"    vocab {vocab} {cpu}: ours {ours[-1].tok_s:.2f} theirs "
                      f"{theirs[-1].tok_s:.2f} tok/s", file=sys.stderr, flush=True)
            a, b = [r.tok_s for r in ours], [r.tok_s for r in theirs]
            print(f"  vocab {vocab:<5} {cpu:<15} ours {fmt_runs(a)} [{ours[0].note}]")
            print(f"  {'':<27} llm-baremetal {fmt_runs(b)} (tokens "
                  f"{','.join(str(r.tokens) for r in theirs)})   ours / theirs "
                  f"{median_ratio(a, b):.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama2c", type=Path, default=None, metavar="PATH",
                    help="a llama2.c checkout: (a) builds and times its run.c")
    ap.add_argument("--llm-baremetal", type=Path, default=None, metavar="PATH",
                    help="an llm-baremetal checkout: (b) builds and boots its guest")
    ap.add_argument("--vocab", default="429,32000",
                    help="vocabulary sizes of the 15M-shaped checkpoints (429,32000)")
    ap.add_argument("--rounds", type=int, default=3, help="native rounds (3)")
    ap.add_argument("--boots", type=int, default=3, help="TCG boots per row and guest (3)")
    ap.add_argument("--tokens", type=int, default=16, help="tokens per TCG boot (16)")
    ap.add_argument("--cpu", default=",".join(CPUS), help="QEMU CPU models (both)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per boot (600)")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    started = time.monotonic()
    print(f"anchors: {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} CPUs, load "
          f"average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"host CPU: {host_cpu()}")
    print(f"QEMU: {qemu_version()}")
    try:
        vocabs = [int(v) for v in args.vocab.split(",")]
    except ValueError:
        raise SystemExit(f"--vocab {args.vocab!r}: give sizes separated by commas, "
                         "e.g. 429,32000") from None
    models = {vocab: checkpoint(vocab) for vocab in vocabs}
    make = subprocess.run(["make", "-s", "-C", str(GUEST), "all", "host"],
                          capture_output=True, text=True)
    if make.returncode != 0:
        raise SystemExit(f"guest build failed:\n{(make.stdout + make.stderr)[-1500:]}")
    work = Path(tempfile.mkdtemp(prefix="bm-anchors-"))
    try:
        if args.llama2c is None:
            print("(a) skipped: no --llama2c PATH (a llama2.c checkout; nothing is downloaded)")
        else:
            native(models, build_llama2c(args.llama2c, work), args.rounds, work)
        print()
        if args.llm_baremetal is None:
            print("(b) skipped: no --llm-baremetal PATH (a checkout of the seeds' guest; "
                  "nothing is downloaded)")
        else:
            seed_efi = build_llm_baremetal(args.llm_baremetal, work)
            tcg(models, seed_efi, args.boots, args.tokens, args.timeout,
                args.cpu.split(","), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"total {time.monotonic() - started:.0f} s; load average at end {load[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

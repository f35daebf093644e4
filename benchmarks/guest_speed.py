"""Decode speed of the reference guest: host build, QEMU TCG, and boot to first token.

Prints, from ONE run (the machine is shared: compare ratios measured together, not across
runs; there are no timed assertions), after the host CPU (model, family/model, vector flags)
and the QEMU version:

  (a) the host build (guest/build/host/bm-guest) on a random 15M-shaped checkpoint (dim 288,
      hidden 768, 6 layers, 6 heads, 6 kv heads, vocab 32000, seq 256), kernel=avx2,
      avx2-128 and portable: decode tok/s medians over N processes, ratios, GFLOP/s taken
      as 2 x params FLOP per token; with --llama2c PATH, llama2.c's run.c built here
      (-Ofast, as its `runfast` target, at -march=native and -march=skylake) on the same
      checkpoint, its own `achieved tok/s`, as the anchor (skipped, with the reason, without);
  (b) the UEFI guest under QEMU TCG, booted through the plugin's own machinery
      (BaremetalSession -> pool.fresh -> dut.wait_done / dut.events('perf')): a row per
      kernel per CPU model -- qemu-tcg (-cpu Skylake-Client) with kernel=auto (avx2-128
      under TCG), avx2 (256-bit), avx2-128 and portable; qemu-tcg-noavx (-cpu qemu64) with
      auto and portable (the AVX2 kernels fall back there) -- on the tiny model (--model
      tiny, the default) or the 15M one; medians over N boots, each row's ratio to the
      portable row of its CPU model, so the 256-bit cliff (or its absence) shows on any host;
  (c) boot to first token on qemu-tcg (kernel=auto).

Boots of the different kinds alternate (round 1: every kind, round 2: ...) so drifting host
load hits them alike. The 15M checkpoint is written once with guest/tools/make_checkpoint.py
into guest/build/speed15m/ (not in git) and reused.

    .venv/bin/python benchmarks/guest_speed.py                   # defaults: ~4 min
    .venv/bin/python benchmarks/guest_speed.py --model 15M --boots 3 --kernel-bench
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hostinfo import host_cpu, qemu_version  # noqa: E402  (benchmarks/, the script's dir)

from pytest_baremetal.build_under_test import reference_guest  # noqa: E402
from pytest_baremetal.dut import Dut  # noqa: E402
from pytest_baremetal.errors import BootError  # noqa: E402
from pytest_baremetal.guestconfig import GuestConfig  # noqa: E402
from pytest_baremetal.session import BaremetalSession  # noqa: E402
from pytest_baremetal.settings import Settings  # noqa: E402

GUEST = ROOT / "guest"
HOST_GUEST = GUEST / "build" / "host" / "bm-guest"
KERNEL_BENCH = GUEST / "build" / "host" / "kernel-bench"
MODEL_15M = GUEST / "build" / "speed15m"
MODEL_15M_BYTES = 60_816_028  # the 15M shape with a shared classifier
PERF_RE = re.compile(r"^\[perf\] repeat=\S+ .*decode_tok_s=([\d.]+)", re.M)
PARAMS_RE = re.compile(r"^\[model\] .*params=(\d+)", re.M)
KERNEL_RE = re.compile(r"^\[cpu\] kernel=(\S+) reason=(\S+)", re.M)


# -- helpers ----------------------------------------------------------------------------------
def cv(values: Sequence[float]) -> float:
    """Coefficient of variation (sample standard deviation / mean); 0 for one value."""
    if len(values) < 2:
        return 0.0
    return statistics.stdev(values) / statistics.fmean(values)


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(min(values))}..{fmt.format(max(values))}"


def ensure_15m_model() -> Path:
    """guest/build/speed15m/{model,tokenizer}.bin, written once by make_checkpoint.py."""
    model = MODEL_15M / "model.bin"
    if (not model.is_file() or model.stat().st_size != MODEL_15M_BYTES
            or not (MODEL_15M / "tokenizer.bin").is_file()):
        subprocess.run([sys.executable, str(GUEST / "tools" / "make_checkpoint.py"),
                        "--shape", "15M", "--out", str(MODEL_15M)], check=True,
                       stdout=subprocess.DEVNULL)
    return MODEL_15M


def frozen_builds(tmp: Path) -> tuple[Path, Path, list[str]]:
    """Copies of the UEFI guest and the host build, rebuilt first when stale.

    Other people edit guest/src while benchmarks run: a failed rebuild falls back to the
    last good binaries (with a warning), and the copies keep one binary for the whole run.
    """
    warnings: list[str] = []
    try:
        reference_guest(ROOT)
    except BootError as error:
        warnings.append(f"UEFI guest rebuild failed, using the last build: "
                        f"{str(error).splitlines()[-1]}")
    make = subprocess.run(["make", "-s", "-C", str(GUEST), "host", "kernel-bench"],
                          capture_output=True, text=True)
    if make.returncode != 0:
        tail = (make.stdout + make.stderr).strip().splitlines()[-1:]
        warnings.append(f"host rebuild failed, using the last build: {' '.join(tail)}")
    efi, host = tmp / "BOOTX64.EFI", tmp / "bm-guest"
    shutil.copy2(GUEST / "build" / "BOOTX64.EFI", efi)
    shutil.copy2(HOST_GUEST, host)
    return efi, host, warnings


def model_files(model_dir: Path) -> dict[str, Path]:
    return {name: model_dir / name for name in ("model.bin", "tokenizer.bin")}


# -- (a) the host build ---------------------------------------------------------------------
@dataclass
class HostRun:
    speeds: list[float]
    kernel: str
    params: int


def host_run(binary: Path, kernel: str, repeats: int, steps: int, work: Path) -> HostRun:
    """One process of the host build on the 15M model; its per-repeat decode tok/s."""
    cfg = work / f"{kernel}.cfg"
    cfg.write_text(f"bench=0\nkernel={kernel}\nrepeats={repeats}\nsteps={steps}\n"
                   f"model=model.bin\ntokenizer=tokenizer.bin\n")
    # the host build reads the model beside its run.cfg: link the cached files there once
    for name in ("model.bin", "tokenizer.bin"):
        link = work / name
        if not link.exists():
            link.symlink_to(MODEL_15M / name)
    out = subprocess.run([str(binary), str(cfg)], capture_output=True, text=True,
                         check=True).stdout
    used = KERNEL_RE.search(out)
    params = PARAMS_RE.search(out)
    speeds = [float(v) for v in PERF_RE.findall(out)]
    if not speeds or used is None or params is None:
        raise RuntimeError(f"host build printed no [perf]/[model]/kernel line:\n{out[-2000:]}")
    return HostRun(speeds, f"{used.group(1)} ({used.group(2)})", int(params.group(1)))


# -- the anchor: llama2.c's own fast build on the same checkpoint ----------------------------
LLAMA2C_TOK_S = re.compile(r"achieved tok/s: ([\d.]+)")
LLAMA2C_MARCH = ("native", "skylake")


def build_llama2c(checkout: Path, out: Path) -> dict[str, Path]:
    """run.c built as its `runfast` target does (-Ofast), once per -march; nothing downloaded."""
    source = checkout / "run.c"
    if not source.is_file():
        raise SystemExit(f"--llama2c {checkout}: no run.c there (give a llama2.c checkout)")
    binaries = {}
    for march in LLAMA2C_MARCH:
        binary = out / f"llama2c-run-{march}"
        subprocess.run(["gcc", "-Ofast", f"-march={march}", "-o", str(binary), str(source),
                        "-lm"], check=True)
        binaries[march] = binary
    return binaries


def llama2c_run(binary: Path, steps: int) -> float:
    """One greedy run of llama2.c on the 15M checkpoint; its own `achieved tok/s`."""
    done = subprocess.run([str(binary), str(MODEL_15M / "model.bin"), "-z",
                           str(MODEL_15M / "tokenizer.bin"), "-t", "0", "-n", str(steps),
                           "-i", "Once upon a time"], capture_output=True, text=True,
                          check=True)
    found = LLAMA2C_TOK_S.search(done.stderr)
    if found is None:
        raise RuntimeError(f"llama2.c printed no tok/s:\n{done.stderr[-1000:]}")
    return float(found.group(1))


# -- (b), (c) boots under QEMU TCG ------------------------------------------------------------
@dataclass
class Boot:
    """What one boot measured. Times in seconds; `t_*` are since the boot was asked for."""

    speeds: list[float]            # decode_tok_s of every repeat
    kernel: str
    params: int
    build: str                     # the [boot] line's build id
    t_console: float               # console log opened (QEMU spawned, paused, connected)
    t_first_byte: float            # the firmware's first console byte
    t_boot_line: float             # the guest's [boot] line
    t_model_line: float            # [model]: checkpoint read and validated
    t_gen_begin: float             # [gen] begin repeat=1 (prefill starts right after)
    t_first_token_guest: float     # t_gen_begin + [perf] first_token_ms of repeat 1
    t_first_token_host: float      # arrival of the first generated text line's first byte
    t_done: float                  # the [done] line
    wall: float                    # asked for the boot -> QEMU gone (dut.close returned)


@dataclass
class Kind:
    label: str
    board: str
    model: str                     # "15M" or "tiny"
    config: dict[str, object]
    boots: list[Boot] = field(default_factory=list)

    def speed_medians(self) -> list[float]:
        return [statistics.median(b.speeds) for b in self.boots]


def measure_boot(session: BaremetalSession, board: str, config: GuestConfig) -> Boot:
    """Boots once through the plugin and reads the times off the console's line stamps."""
    asked = time.monotonic()
    dut: Dut = session.pool.fresh(board, config)
    try:
        dut.wait_done(timeout=900)
        t0 = dut.console.log.t0 - asked  # console time 0, in seconds since the ask
        perf = dut.events("perf")
        model = dut.event("model", timeout=0)
        begin = dut.event("gen_begin", timeout=0, repeat=1)
        kernel = dut.event("kernel", timeout=0)
        done = dut.event("done", timeout=0)
        boot_line = dut.event("boot", timeout=0)
        first_byte = dut.console.first_byte_time
        # the first generated token: the first console line after `[gen] begin repeat=1`
        # (a line keeps the arrival time of its first byte, so a line of text is stamped
        # when its first piece arrived)
        lines = list(dut.console.lines)
        start = next(i for i, line in enumerate(lines) if line.text.startswith("[gen] begin"))
        first_text = lines[start + 1]
        if first_text.text.startswith("[gen] end"):
            raise RuntimeError(f"no token generated: {dut.log_path}")
        first_token_ms = perf[0].fields["first_token_ms"]
        assert isinstance(first_token_ms, float)
        speeds = [float(e.fields["decode_tok_s"]) for e in perf]  # type: ignore[arg-type]
        boot = Boot(
            speeds=speeds,
            kernel=f"{kernel.fields['kernel']} ({kernel.fields['reason']})",
            params=int(model.fields["params"]),  # type: ignore[call-overload]
            build=str(boot_line.fields["build"]),
            t_console=t0,
            t_first_byte=t0 + (first_byte or 0.0),
            t_boot_line=t0 + boot_line.time,
            t_model_line=t0 + model.time,
            t_gen_begin=t0 + begin.time,
            t_first_token_guest=t0 + begin.time + first_token_ms / 1000.0,
            t_first_token_host=t0 + first_text.time,
            t_done=t0 + done.time,
            wall=0.0,
        )
    finally:
        dut.close()
    boot.wall = time.monotonic() - asked
    return boot


def precompose(session: BaremetalSession, config: GuestConfig) -> None:
    """Composes (and caches) the disk image of a configuration outside the timings."""
    session.build.disk_for(config, session.settings.log_dir.parent / ".images")


# -- the report -------------------------------------------------------------------------------
def print_anchor(anchor: dict[str, list[float]], ours: dict[str, float]) -> None:
    if not anchor:
        print("    llama2.c anchor: skipped (pass --llama2c PATH, a llama2.c checkout: run.c is "
              "built here with -Ofast -march=native and -march=skylake)")
        return
    best = max(ours.values())
    for march, speeds in anchor.items():
        med = statistics.median(speeds)
        print(f"    llama2.c run.c -Ofast -march={march:<8} {med:>8.1f} tok/s "
              f"({len(speeds)} runs, {spread(speeds, '{:.1f}')}); our best kernel / it: "
              f"{best / med:.2f}x")


def print_host(host: dict[str, list[HostRun]], steps: int, repeats: int) -> dict[str, float]:
    params = next(iter(host.values()))[0].params
    flop = 2 * params
    runs = len(next(iter(host.values())))
    print(f"(a) host build, 15M-shaped random model ({params:,} params, {flop / 1e6:.1f} MFLOP "
          f"per token = 2 x params), {runs} processes per kernel, {repeats} repeats x "
          f"{steps} steps each")
    print(f"    {'kernel':<10} {'used':<20} {'decode tok/s':>12} {'run spread':>16} "
          f"{'repeat CV':>9} {'GFLOP/s':>8} {'/portable':>9}")
    medians: dict[str, float] = {}
    for kernel, runs_ in host.items():
        medians[kernel] = statistics.median(statistics.median(r.speeds) for r in runs_)
    for kernel, runs_ in host.items():
        per_run = [statistics.median(r.speeds) for r in runs_]
        med = medians[kernel]
        rcv = statistics.median(cv(r.speeds) for r in runs_)
        print(f"    {kernel:<10} {runs_[0].kernel:<20} {med:>12.1f} "
              f"{spread(per_run, '{:.1f}'):>16} {rcv:>9.1%} {med * flop / 1e9:>8.2f} "
              f"{med / medians['portable']:>8.2f}x")
    return medians


def print_tcg(kinds: list[Kind], model: str) -> dict[str, float]:
    print(f"(b) UEFI guest under QEMU TCG, {model} model, booted through BaremetalSession; "
          f"{len(kinds[0].boots)} boots per row; tok/s = median over boots of each boot's "
          "median over its repeats; /portable = this row / the portable row of the same board")
    print(f"    {'board (CPU model)':<32} {'asked':<9} {'kernel used':<20} {'decode tok/s':>12} "
          f"{'boot spread':>14} {'repeat CV':>9} {'/portable':>9}")
    medians = {kind.label: statistics.median(kind.speed_medians()) for kind in kinds}
    for kind in kinds:
        per_boot = kind.speed_medians()
        med = medians[kind.label]
        base = medians.get(f"{kind.board}/portable", med)
        rcv = statistics.median(cv(b.speeds) for b in kind.boots)
        cpu = "Skylake-Client" if kind.board == "qemu-tcg" else "qemu64"
        print(f"    {kind.board + ' (' + cpu + ')':<32} {kind.config['kernel']!s:<9} "
              f"{kind.boots[0].kernel:<20} {med:>12.2f} {spread(per_boot):>14} {rcv:>9.1%} "
              f"{med / base:>8.2f}x")
    return medians


def print_first_token(kinds: list[Kind]) -> None:
    print("(c) boot to first token on qemu-tcg (seconds since the boot was asked for: "
          "pool.fresh() called, disk image already composed and cached); medians over boots")
    cols = [("console", "t_console"), ("fw byte", "t_first_byte"), ("[boot]", "t_boot_line"),
            ("[model]", "t_model_line"), ("gen begin", "t_gen_begin"),
            ("1st tok", "t_first_token_guest"), ("1st tok*", "t_first_token_host"),
            ("[done]", "t_done")]
    print(f"    {'model':<6} {'boots':>5} " + " ".join(f"{c:>9}" for c, _ in cols)
          + f" {'1st tok spread':>15}")
    for kind in kinds:
        vals = [statistics.median(getattr(b, attr) for b in kind.boots) for _, attr in cols]
        tok = [b.t_first_token_guest for b in kind.boots]
        print(f"    {kind.model:<6} {len(kind.boots):>5} "
              + " ".join(f"{v:>9.2f}" for v in vals) + f" {spread(tok):>15}")
    print("    console: QEMU spawned paused, serial+QMP connected, console log opened (its "
          "time 0);\n"
          "    fw byte: the firmware's first console byte; [boot]/[model]/gen begin/[done]: "
          "the time stamp\n"
          "    of that console line (its first byte); 1st tok = `[gen] begin repeat=1` stamp + "
          "`[perf] first_token_ms`\n"
          "    (prefill of the prompt + the first forward pass, timed by the guest's TSC); "
          "1st tok* = the host-side\n"
          "    arrival of the first generated text line (cross-check; includes the serial "
          "path).")


TCG_ROWS = (("qemu-tcg", ("auto", "avx2", "avx2-128", "portable")),
            ("qemu-tcg-noavx", ("auto", "portable")))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("tiny", "15M"), default="tiny",
                    help="checkpoint for the TCG rows (tiny: the shipped guest/models/tiny)")
    ap.add_argument("--host-runs", type=int, default=3, help="host processes per kernel (3)")
    ap.add_argument("--host-repeats", type=int, default=3, help="repeats per host process (3)")
    ap.add_argument("--host-steps", type=int, default=200, help="steps on the host (200)")
    ap.add_argument("--no-host", action="store_true", help="skip (a), the host build")
    ap.add_argument("--llama2c", type=Path, default=None, metavar="PATH",
                    help="a llama2.c checkout: (a) also times its run.c (-Ofast, "
                         "-march=native and skylake) on the same 15M checkpoint")
    ap.add_argument("--boots", type=int, default=3, help="TCG boots per row (3)")
    ap.add_argument("--tcg-repeats", type=int, default=3, help="repeats per TCG boot (3)")
    ap.add_argument("--tcg-steps", type=int, default=None,
                    help="steps per TCG repeat (default: 64 on tiny, 16 on 15M)")
    ap.add_argument("--kernel-bench", action="store_true",
                    help="also run guest/build/host/kernel-bench (matmul shapes)")
    args = ap.parse_args(argv)
    started = time.monotonic()
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    load = os.getloadavg()
    steps = args.tcg_steps or (64 if args.model == "tiny" else 16)

    tmp = Path(tempfile.mkdtemp(prefix="bm-guest-speed-"))
    model_dir = ensure_15m_model() if (args.model == "15M" or not args.no_host) else None
    efi, host_binary, warnings = frozen_builds(tmp)  # outside the timings

    def settings(board_set: tuple[str, ...], model: Path) -> Settings:
        # the reference guest's EFI (a frozen copy) + model files: the --bm-efi/--bm-file
        # path of the plugin, with the reference profile and its run.cfg
        return Settings(root=ROOT, targets=board_set, board_dirs=(ROOT / "boards",),
                        efi=efi, efi_files=model_files(model), log_dir=tmp / "logs",
                        history=str(tmp / "h.sqlite"))

    boards = tuple(board for board, _ in TCG_ROWS)
    tcg_model = GUEST / "models" / "tiny" if args.model == "tiny" else model_dir
    assert tcg_model is not None
    session = BaremetalSession(settings(boards, tcg_model))
    base = {"bench": 0, "repeats": args.tcg_repeats, "steps": steps}
    # the 256-bit kernel may run ~20x slower under TCG (Intel hosts): fewer steps, one repeat
    slow = {**base, "repeats": 1, "steps": min(steps, 16)}
    kinds = [Kind(f"{board}/{kernel}", board, args.model,
                  {**(slow if kernel == "avx2" else base), "kernel": kernel})
             for board, kernels in TCG_ROWS for kernel in kernels]
    first = Kind("first", "qemu-tcg", args.model, {"bench": 0, "repeats": 1, "steps": 64,
                                                   "kernel": "auto"})
    host: dict[str, list[HostRun]] = {"avx2": [], "avx2-128": [], "portable": []}
    anchor: dict[str, list[float]] = {}
    llama2c = {} if args.llama2c is None or args.no_host else build_llama2c(args.llama2c, tmp)
    try:
        for kind in [*kinds, first]:
            precompose(session, GuestConfig.of(kind.config))  # type: ignore[arg-type]
        # host first (quiet: nothing else of ours runs), alternating kernels
        for _ in range(0 if args.no_host else args.host_runs):
            for kernel in host:
                host[kernel].append(host_run(host_binary, kernel, args.host_repeats,
                                             args.host_steps, tmp))
            for march, binary in llama2c.items():
                anchor.setdefault(march, []).append(llama2c_run(binary, args.host_steps))
        for round_ in range(args.boots):
            for kind in [*kinds, first]:
                boot = measure_boot(session, kind.board,
                                    GuestConfig.of(kind.config))  # type: ignore[arg-type]
                kind.boots.append(boot)
                print(f"  round {round_ + 1}/{args.boots} {kind.label:<24} "
                      f"{statistics.median(boot.speeds):8.2f} tok/s  boot {boot.wall:5.1f} s",
                      file=sys.stderr, flush=True)
    finally:
        session.close()

    print(f"guest_speed: {stamp}, {os.cpu_count()} CPUs, load average at start "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, logs {tmp / 'logs'}")
    print(f"host CPU: {host_cpu()}")
    print(f"QEMU: {qemu_version()}")
    builds = sorted({b.build for k in [*kinds, first] for b in k.boots})
    print(f"UEFI guest build {', '.join(builds)}")
    for warning in warnings:
        print(f"WARNING: {warning}")
    if not args.no_host:
        print_anchor(anchor, print_host(host, args.host_steps, args.host_repeats))
        print()
    tcg = print_tcg(kinds, args.model)
    print(f"    (rows: {base['repeats']} repeats x {steps} steps a boot; the avx2 row "
          f"{slow['repeats']} x {slow['steps']})")
    auto, portable = tcg["qemu-tcg/auto"], tcg["qemu-tcg/portable"]
    print(f"    Skylake-Client: default (auto) / portable {auto / portable:.2f}x, "
          f"256-bit avx2 / portable {tcg['qemu-tcg/avx2'] / portable:.2f}x; "
          f"auto on Skylake-Client / auto on qemu64 "
          f"{auto / tcg['qemu-tcg-noavx/auto']:.2f}x")
    print()
    print_first_token([first])
    print(f"    ({args.model} model, steps=64, repeats=1, kernel=auto)")
    load_end = os.getloadavg()
    print(f"total {time.monotonic() - started:.0f} s; load average at end "
          f"{load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    if args.kernel_bench:
        print()
        subprocess.run([str(KERNEL_BENCH)], check=True)  # not frozen: run last
    return 0


if __name__ == "__main__":
    sys.exit(main())

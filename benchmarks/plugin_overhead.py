"""How much the plugin costs on top of QEMU, and how long the main job takes.

Prints, from one run (medians; the machine is shared, so compare ratios measured together):
  1. plain QEMU: the reference guest booted with `-serial stdio`, until `[done]` is printed;
  2. the plugin: the same image and board through BaremetalSession (paused start, sockets,
     QMP, console log, event parsing), until the `done` event;
  3. their ratio (target: plugin overhead under 5%);
  4. the wall time of `pytest --target=qemu-tcg` over suites/ (with --suites);
  5. the console latency, from benchmarks/expect_latency.py.
Runs alternate (plain, plugin, plain, ...) so drifting load hits both alike.

    .venv/bin/python benchmarks/plugin_overhead.py --runs 5 --suites
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_baremetal.build_under_test import reference_guest  # noqa: E402
from pytest_baremetal.errors import BootError  # noqa: E402
from pytest_baremetal.guestconfig import GuestConfig  # noqa: E402
from pytest_baremetal.session import BaremetalSession  # noqa: E402
from pytest_baremetal.settings import Settings  # noqa: E402


def plain_qemu(argv: list[str]) -> float:
    """Seconds from spawning QEMU to the `[done]` line on its stdout."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        for raw in proc.stdout:
            if raw.startswith(b"[done]"):
                return time.monotonic() - start
        raise RuntimeError("plain QEMU ended without [done]")
    finally:
        proc.kill()
        proc.wait()


def plugin_boot(session: BaremetalSession, board: str,
                config: GuestConfig) -> tuple[float, list[str]]:
    """Seconds from asking the plugin for a boot to its `done` event, and QEMU's argv."""
    start = time.monotonic()
    dut = session.pool.fresh(board, config)
    try:
        dut.wait_done(timeout=600)
        return time.monotonic() - start, list(dut.info.description.command)
    finally:
        dut.close()


def plain_argv(plugin_argv: list[str]) -> list[str]:
    """The plugin's QEMU command line, run the plain way: not paused, serial on stdout."""
    argv: list[str] = []
    skip = 0
    for i, arg in enumerate(plugin_argv):
        if skip:
            skip -= 1
            continue
        if arg == "-S":
            continue
        if arg in ("-chardev", "-mon") or (arg == "-serial" and i + 1 < len(plugin_argv)):
            skip = 1
            continue
        argv.append(arg)
    return [*argv, "-serial", "stdio"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--board", default="qemu-tcg")
    parser.add_argument("--suites", action="store_true", help="also time pytest over suites/")
    args = parser.parse_args()

    logs = Path(tempfile.mkdtemp(prefix="bm-overhead-"))
    try:  # builds the guest if needed, outside the timings
        reference_guest(ROOT)
    except BootError as error:  # others edit guest/src: keep the last good build
        print(f"WARNING: guest rebuild failed, using the last build: "
              f"{str(error).splitlines()[-1]}")
    efi = logs / "BOOTX64.EFI"  # one frozen binary for the whole run
    shutil.copy2(ROOT / "guest" / "build" / "BOOTX64.EFI", efi)
    tiny = ROOT / "guest" / "models" / "tiny"
    settings = Settings(root=ROOT, targets=(args.board,), board_dirs=(ROOT / "boards",),
                        efi=efi, efi_files={n: tiny / n for n in ("model.bin", "tokenizer.bin")},
                        log_dir=logs / "logs", history=str(logs / "history.sqlite"))
    session = BaremetalSession(settings)
    config = GuestConfig.of({"bench": 0, "repeats": 1, "steps": 32})
    _, argv = plugin_boot(session, args.board, config)  # warm-up; also gives the argv
    plain_cmd = plain_argv(argv)

    plain, plugin = [], []
    for _ in range(args.runs):
        plain.append(plain_qemu(plain_cmd))
        plugin.append(plugin_boot(session, args.board, config)[0])
    session.close()
    p, q = statistics.median(plain), statistics.median(plugin)
    print(f"board {args.board}, {args.runs} runs each, guest config {config.label()}")
    print(f"plain QEMU to [done]      median {p:7.3f} s  "
          f"(min {min(plain):.3f}, max {max(plain):.3f})")
    print(f"plugin boot to done event median {q:7.3f} s  "
          f"(min {min(plugin):.3f}, max {max(plugin):.3f})")
    print(f"plugin overhead           {100 * (q / p - 1):+6.1f} %  (target < 5 %)")

    if args.suites:
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", str(ROOT / "suites"), f"--target={args.board}",
             "-q", "-p", "no:cacheprovider", f"--bm-logs={logs / 'suite-logs'}",
             f"--bm-history={logs / 'suite-history.sqlite'}"],
            cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - start
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "?"
        print(f"pytest --target={args.board} over suites/: {wall:.1f} s wall ({summary})")

    latency = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "expect_latency.py")],
                             capture_output=True, text=True)
    print(latency.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())

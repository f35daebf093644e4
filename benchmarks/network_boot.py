"""The model over the network vs from the disk, under QEMU TCG.

Boots the reference guest with a 15M-shaped random-weight checkpoint (about 60 MB, made by
guest/tools/make_checkpoint.py) through the plugin's session machinery, alternating:
  disk:    the model and tokenizer read from the EFI partition;
  network: the same files downloaded from netserve on 127.0.0.1 (http://10.0.2.2:PORT/).
Prints (medians of --runs runs each):
  1. the download throughput, as the guest measured it (`[net] done mb_s`) and as the
     server saw it (bytes sent / response time);
  2. power-on -> first token for both, and their difference; the guest's DHCP time
     (`[net] setup_ms`) is part of the network figure.
Power-on -> first token is the host time of the `[gen] begin` line (seconds since QEMU
started, paused, with the console attached) plus the guest's `first_token_ms`.

    .venv/bin/python benchmarks/network_boot.py --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_baremetal.build_under_test import reference_guest  # noqa: E402
from pytest_baremetal.guestconfig import GuestConfig  # noqa: E402
from pytest_baremetal.netserve import FileServer  # noqa: E402
from pytest_baremetal.session import BaremetalSession  # noqa: E402
from pytest_baremetal.settings import Settings  # noqa: E402

RUN = {"bench": 0, "repeats": 1, "steps": 8}


def make_model(folder: Path, shape: str) -> Path:
    if not (folder / "model.bin").is_file():
        subprocess.run([sys.executable, str(ROOT / "guest" / "tools" / "make_checkpoint.py"),
                        "--shape", shape, "--out", str(folder)], check=True,
                       capture_output=True)
    return folder


def first_token_s(dut: Any) -> float:
    """Seconds from power-on to the first generated token."""
    begin = dut.event("gen_begin")
    perf = dut.event("perf")
    return float(begin.time) + float(perf.fields["first_token_ms"]) / 1000


def boot(session: BaremetalSession, board: str, config: GuestConfig) -> dict[str, float]:
    dut = session.pool.fresh(board, config)
    try:
        done = dut.wait_done(timeout=1800)
        if done.fields.get("status") != "ok":
            raise RuntimeError(f"run failed:\n{dut.tail(30)}")
        figures = {"first_token_s": first_token_s(dut), "done_s": float(done.time)}
        if "model_url" in config.as_dict():
            fallbacks = dut.events("net_fallback")
            if fallbacks:
                raise RuntimeError(f"the download fell back: {fallbacks[0].line}")
            model = next(e for e in dut.events("net_done") if e.fields["file"] == "model.bin")
            figures["guest_mb_s"] = float(model.fields["mb_s"])
            figures["setup_s"] = float(dut.event("net_info").fields["setup_ms"]) / 1000
        return figures
    finally:
        dut.close()


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--board", default="qemu-tcg")
    parser.add_argument("--shape", default="15M")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="a folder with model.bin and tokenizer.bin (default: made)")
    parser.add_argument("--profile", type=Path, default=None, help="marker profile")
    parser.add_argument("--nic", default=None, help="override the board's NIC model "
                        "(e1000, virtio-net-pci, rtl8139)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bm-netboot-"))
    models = args.model_dir or make_model(work / "model", args.shape)
    settings = Settings(root=ROOT, targets=(args.board,), board_dirs=(ROOT / "boards",),
                        log_dir=work / "logs", model_dir=models, profile=args.profile,
                        overrides=(f"network.nic={args.nic}",) if args.nic else ())
    session = BaremetalSession(settings)
    reference_guest(ROOT)  # builds the guest if needed, outside the timings
    size = (models / "model.bin").stat().st_size
    disk_config = GuestConfig.of(RUN)
    disk: list[dict[str, float]] = []
    net: list[dict[str, float]] = []
    server_mb_s: list[float] = []
    with FileServer(models) as server:
        net_config = GuestConfig.of({
            **RUN, "net_timeout_ms": 30000, "model_url": server.guest_url("model.bin"),
            "tokenizer_url": server.guest_url("tokenizer.bin"),
            "model_sha256": server.digest("model.bin")})
        for _ in range(args.runs):
            disk.append(boot(session, args.board, disk_config))
            before = len(server.log.records)
            net.append(boot(session, args.board, net_config))
            got = [r for r in server.log.records[before:]
                   if r.path == "/model.bin" and r.sent == size]
            server_mb_s += [r.sent / 1e6 / r.duration_s for r in got]
    session.close()

    nic = session.board(args.board).network
    print(f"board {args.board} (NIC {nic.nic if nic else 'none'}), "
          f"model {models / 'model.bin'} ({size / 1e6:.1f} MB), "
          f"{args.runs} runs each, guest config {disk_config.label()}")
    print(f"download throughput (guest)   median {median(net, 'guest_mb_s'):7.2f} MB/s  "
          f"(min {min(r['guest_mb_s'] for r in net):.2f}, "
          f"max {max(r['guest_mb_s'] for r in net):.2f})")
    print(f"download throughput (server)  median {statistics.median(server_mb_s):7.2f} MB/s")
    d, n = median(disk, "first_token_s"), median(net, "first_token_s")
    print(f"power-on -> first token, disk     median {d:7.2f} s  "
          f"(min {min(r['first_token_s'] for r in disk):.2f}, "
          f"max {max(r['first_token_s'] for r in disk):.2f})")
    print(f"power-on -> first token, network  median {n:7.2f} s  "
          f"(min {min(r['first_token_s'] for r in net):.2f}, "
          f"max {max(r['first_token_s'] for r in net):.2f}); "
          f"DHCP {median(net, 'setup_s'):.2f} s of it")
    print(f"network - disk                    {n - d:+7.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

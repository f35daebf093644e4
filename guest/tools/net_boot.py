"""Boot the UEFI guest under QEMU TCG with network boot of its model, for manual checks and
the throughput benchmark. Serves files from a directory on 127.0.0.1 with the fault modes
of tests/check_net.py (URL /MODE/FILE), composes a disk image whose run.cfg points the
guest at http://10.0.2.2:PORT/MODE/FILE, boots, and prints the console with the seconds
since QEMU started.

    python tools/net_boot.py --serve DIR [--mode ok] [--nic e1000|virtio-net-pci|none]
        [--disk-model PATH|--no-disk-model] [--cfg 'key=value'...] [--timeout 600]

Run from guest/ after `make efi`. The QEMU it starts is killed on exit.
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GUEST = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(GUEST / "tests"))
sys.path.insert(0, str(GUEST.parent))

from check_net import Handler  # noqa: E402

OVMF = "/usr/share/qemu/OVMF.fd"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", type=Path, required=True)
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--tok-mode", default=None, help="mode for the tokenizer (default: --mode)")
    ap.add_argument("--nic", default="e1000")
    ap.add_argument("--port", type=int, default=0, help="0: a free port; -1: nothing listens")
    ap.add_argument("--disk-model", type=Path, default=GUEST / "models/tiny/model.bin")
    ap.add_argument("--disk-tokenizer", type=Path, default=GUEST / "models/tiny/tokenizer.bin")
    ap.add_argument("--no-disk-model", action="store_true")
    ap.add_argument("--disk-only", action="store_true",
                    help="no URL in run.cfg and no NIC: the disk baseline")
    ap.add_argument("--no-net-tokenizer", action="store_true")
    ap.add_argument("--cfg", action="append", default=[])
    ap.add_argument("--cpu", default="Skylake-Client")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()

    Handler.root = args.serve
    server = http.server.ThreadingHTTPServer(("127.0.0.1", max(args.port, 0)), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port == -1:
        server.server_close()      # a port where nothing listens: connection refused
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()

    work = Path(tempfile.mkdtemp(prefix="bm-netboot-"))
    tok_mode = args.tok_mode or args.mode
    cfg = [] if args.disk_only else [f"model_url=http://10.0.2.2:{port}/{args.mode}/model.bin"]
    if args.disk_only:
        args.nic = "none"
    elif not args.no_net_tokenizer:
        cfg.append(f"tokenizer_url=http://10.0.2.2:{port}/{tok_mode}/tokenizer.bin")
    cfg += ["bench=0", "repeats=1", "steps=16", *args.cfg]
    (work / "run.cfg").write_text("\n".join(cfg) + "\n")
    files = ["--file", f"run.cfg={work / 'run.cfg'}",
             "--file", f"tokenizer.bin={args.disk_tokenizer}"]
    if not args.no_disk_model:
        files += ["--file", f"model.bin={args.disk_model}"]
    disk = work / "disk.img"
    subprocess.run([sys.executable, "-m", "pytest_baremetal.image", "--efi",
                    str(GUEST / "build/BOOTX64.EFI"), *files, "-o", str(disk)], check=True,
                   env={**os.environ, "PYTHONPATH": str(GUEST.parent)})
    net = (["-net", "none"] if args.nic == "none" else
           ["-netdev", "user,id=net0", "-device", f"{args.nic},netdev=net0,bootindex=1"])
    argv = ["qemu-system-x86_64", "-nodefaults", "-machine", "q35,accel=tcg", "-cpu", args.cpu,
            "-m", "1024", "-bios", OVMF,
            "-drive", f"if=none,id=disk0,format=raw,readonly=on,file={disk}",
            "-device", "virtio-blk-pci,drive=disk0,bootindex=0",
            "-serial", "stdio", "-display", "none", "-vga", "none", *net, "-no-reboot"]
    print("#", " ".join(argv), flush=True)
    print("# run.cfg:", "; ".join(cfg), flush=True)
    gen_begin = first_token_ms = None
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    killer = threading.Timer(args.timeout, proc.kill)
    killer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("[") or "error" in line.lower():
                print(f"{time.monotonic() - t0:8.3f} {line}", flush=True)
            if line.startswith("[gen] begin") and gen_begin is None:
                gen_begin = time.monotonic() - t0
            if line.startswith("[perf] repeat=1 ") and first_token_ms is None:
                first_token_ms = float(line.split("first_token_ms=")[1].split()[0])
    finally:
        killer.cancel()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if args.port != -1:
            server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(f"# qemu exit {proc.returncode} after {time.monotonic() - t0:.1f} s")
    if gen_begin is not None and first_token_ms is not None:
        print(f"# first token {gen_begin + first_token_ms / 1000:.3f} s after QEMU started "
              f"([gen] begin at {gen_begin:.3f} s + first_token_ms {first_token_ms:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

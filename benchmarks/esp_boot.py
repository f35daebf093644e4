"""Which ESP boots reliably with OVMF: the plugin's pure-Python FAT32 GPT image, or QEMU's
vvfat (`-drive file=fat:DIR`). Boots the fixture guest (tests/fixture_guest) N times each
under TCG and prints successes and the median time from QEMU start to its last line.

    python benchmarks/esp_boot.py [--boots 5]
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
sys.path.insert(0, str(ROOT / "tests"))

from hostinfo import host_cpu  # noqa: E402

from pytest_baremetal.firmware import find_firmware  # noqa: E402
from pytest_baremetal.image import compose_image  # noqa: E402

DONE = b"[fixture] done lines=3"


def boot(drive: list[str], firmware: Path, timeout: float = 90.0) -> float | None:
    """Seconds to the fixture's last line, or None when it never came."""
    argv = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", "max", "-m", "256",
            "-bios", str(firmware), "-display", "none", "-serial", "stdio", "-monitor", "none",
            "-net", "none", "-no-reboot", *drive]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    seen = b""
    try:
        assert proc.stdout is not None
        while time.monotonic() - started < timeout:
            chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                break
            seen += chunk
            if DONE in seen:
                return time.monotonic() - started
        return None
    finally:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boots", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("qemu-system-x86_64") is None:
        print("qemu-system-x86_64 is not installed")
        return 2
    from fixture_guest.fixtures import build_fixture_efi

    efi = build_fixture_efi()
    firmware = find_firmware().unified
    if firmware is None:
        print("needs a unified OVMF.fd")
        return 2
    print(host_cpu())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mode = folder / "mode.txt"
        mode.write_text("lines 3\n")
        image = compose_image(folder / "disk.img", efi, {"mode.txt": mode})
        tree = folder / "tree"
        (tree / "EFI" / "BOOT").mkdir(parents=True)
        shutil.copy(efi, tree / "EFI" / "BOOT" / "BOOTX64.EFI")
        shutil.copy(mode, tree / "mode.txt")
        kinds = {
            "fatfs GPT image": ["-drive", f"file={image},format=raw,if=ide"],
            "vvfat fat:DIR": ["-drive", f"file=fat:{tree},format=raw,if=ide"],
            "vvfat fat:rw:DIR": ["-drive", f"file=fat:rw:{tree},format=raw,if=ide"],
        }
        for name, drive in kinds.items():
            times = [boot(drive, firmware) for _ in range(args.boots)]
            ok = [t for t in times if t is not None]
            median = f"{statistics.median(ok):.2f} s" if ok else "-"
            print(f"{name:<18} booted {len(ok)}/{args.boots}, median to last line {median}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m pytest_baremetal doctor`` and ``boards``: what this host can run, and how to
fix what it cannot. An accelerator is only reported OK after OVMF really booted on it."""

from __future__ import annotations

import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pytest_baremetal import targets
from pytest_baremetal.boards import board_paths, load_board
from pytest_baremetal.errors import BaremetalError
from pytest_baremetal.firmware import INSTALL_HINTS, FirmwareFiles, find_firmware
from pytest_baremetal.targets.qemu.command import QEMU_INSTALL_HINTS, qemu_binary
from pytest_baremetal.targets.qemu.fallback import classify
from pytest_baremetal.targets.qemu.process import launch
from pytest_baremetal.targets.qemu.spec import qemu_board

PROBE_SECONDS = 10.0  # OVMF's first byte takes ~2 s under TCG, 5+ s on a busy host
EFI_INCLUDES = (Path("/usr/include/efi"),)
EFI_LIBDIRS = (Path("/usr/lib"), Path("/usr/lib64"), Path("/usr/lib/gnuefi"),
               Path("/usr/lib64/gnuefi"))
EFI_LIBFILES = ("crt0-efi-x86_64.o", "elf_x86_64_efi.lds", "libefi.a", "libgnuefi.a")
ACCEL_HOSTS = {"tcg": ("linux", "darwin", "win32"), "kvm": ("linux",), "whpx": ("win32",),
               "hvf": ("darwin",)}
ACCEL_FIXES = {
    "kvm": ("sudo usermod -aG kvm $USER  (then log in again); on a VM enable nested "
            "virtualisation, or use --target qemu-tcg (qemu-kvm falls back to TCG)"),
    "whpx": ("dism /online /enable-feature /featurename:HypervisorPlatform /all  (admin, "
             "then reboot; enable VT-x in the BIOS), or use --target qemu-tcg"),
    "hvf": "use a QEMU built with HVF (brew install qemu), or --target qemu-tcg",
    "tcg": "reinstall QEMU: " + "; ".join(QEMU_INSTALL_HINTS),
}


# Only needed to build the reference guest or the fixture guest from source; a prebuilt
# .efi (yours, or the wheel's reference guest) needs QEMU and OVMF alone.
COMPILER_FIXES = {
    "Debian/Ubuntu": "sudo apt-get install build-essential",
    "Fedora": "sudo dnf install gcc make binutils",
    "Arch": "sudo pacman -S base-devel",
    "macOS": "xcode-select --install  (gnu-efi builds need a Linux host or container)",
    "Windows": "not needed to test a prebuilt .efi; to build the reference guest use WSL "
               "(wsl --install, then the Debian/Ubuntu fix inside it)",
}
GNU_EFI_FIXES = {
    "Debian/Ubuntu": "sudo apt-get install gnu-efi",
    "Fedora": "sudo dnf install gnu-efi-devel",
    "Arch": "sudo pacman -S gnu-efi",
    "macOS": "not packaged for macOS: build in a Linux container, or test a prebuilt .efi",
    "Windows": "not needed to test a prebuilt .efi; build in WSL (sudo apt-get install "
               "gnu-efi) to rebuild the reference guest",
}


WINGET_QEMU = ("winget install SoftwareFreedomConservancy.QEMU  (then add C:\\Program Files\\qemu "
               "to PATH, or set BM_QEMU)")


def host_platform(os_release: Path = Path("/etc/os-release")) -> str:
    """The label install hints use: Debian/Ubuntu, Fedora, Arch, macOS, Windows or Linux."""
    if sys.platform == "win32":
        return "Windows"
    if sys.platform == "darwin":
        return "macOS"
    try:
        text = os_release.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "Linux"
    ids: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids.update(value.strip().strip('"').split())
    for label, names in (("Debian/Ubuntu", {"debian", "ubuntu"}), ("Fedora",
                         {"fedora", "rhel", "centos"}), ("Arch", {"arch"})):
        if ids & names:
            return label
    return "Linux"


def for_platform(hints: Sequence[str], platform: str | None = None) -> list[str]:
    """The hints of this platform (``"Fedora: ..."``) plus those for any (no label)."""
    platform = platform or host_platform()
    labels = ("Debian/Ubuntu", "Fedora", "Arch", "macOS", "Windows")
    own = [h.split(": ", 1)[1] for h in hints if h.startswith(platform + ": ")]
    generic = [h for h in hints if not any(h.startswith(label + ": ") for label in labels)]
    return own + generic if own else list(hints)


def platform_fix(fixes: dict[str, str], platform: str | None = None) -> str:
    platform = platform or host_platform()
    if platform in fixes:
        return fixes[platform]
    return " | ".join(f"{label}: {fix}" for label, fix in fixes.items())


@dataclass(frozen=True)
class Check:
    """One line of the report: status OK, FAIL or SKIP; ``fix`` is a command to run."""

    name: str
    status: str
    detail: str
    fix: str = ""
    required: bool = True


def run_doctor(out: TextIO, boot_accelerators: bool = True) -> int:
    """Print one OK/FAIL line per check; 0 when everything required is OK, else 1."""
    checks: list[Check] = []
    qemu = _check_qemu(checks)
    firmware = _check_firmware(checks)
    # Disk images are composed in pure Python (fatfs): mtools is not needed.
    _check_tools(checks, "compiler", ("gcc", "make", "ld", "objcopy"),
                 platform_fix(COMPILER_FIXES), required=False)
    checks.append(_check_gnu_efi())
    for accel, hosts in ACCEL_HOSTS.items():
        if sys.platform not in hosts:
            continue
        if not boot_accelerators:
            checks.append(Check(f"accel {accel}", "SKIP", "not booted (--quick)",
                                required=False))
        elif qemu is None or firmware is None:
            checks.append(Check(f"accel {accel}", "SKIP", "needs QEMU and OVMF first",
                                required=False))
        else:
            checks.append(probe_accel(accel, firmware, qemu))
    for check in checks:
        out.write(f"{check.status:<4} {check.name}: {check.detail}\n")
        if check.status == "FAIL" and check.fix:
            for line in check.fix.split(" | "):
                out.write(f"     fix: {line}\n")
    failed = [c for c in checks if c.status == "FAIL" and c.required]
    out.write(f"\n{len(failed)} required check(s) failed\n" if failed else "\nall required "
              "checks passed\n")
    return 1 if failed else 0


def _check_qemu(checks: list[Check]) -> str | None:
    try:
        binary = qemu_binary()
        version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                 timeout=20, stdin=subprocess.DEVNULL).stdout
    except (BaremetalError, OSError, subprocess.SubprocessError) as error:
        hints = for_platform(QEMU_INSTALL_HINTS)
        if host_platform() == "Windows":
            hints.insert(0, WINGET_QEMU)
        checks.append(Check("qemu", "FAIL", str(error).splitlines()[0], " | ".join(hints)))
        return None
    first = version.splitlines()[0] if version else "version unknown"
    checks.append(Check("qemu", "OK", f"{binary} ({first})"))
    return binary


def _check_firmware(checks: list[Check]) -> FirmwareFiles | None:
    try:
        found = find_firmware()
    except BaremetalError:
        checks.append(Check("firmware", "FAIL", "no OVMF found",
                            " | ".join(for_platform(INSTALL_HINTS))))
        return None
    checks.append(Check("firmware", "OK", found.describe()))
    return found


def _check_tools(checks: list[Check], name: str, tools: Sequence[str], fix: str,
                 required: bool = True) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        checks.append(Check(name, "FAIL", "missing " + ", ".join(missing), fix, required))
    else:
        checks.append(Check(name, "OK", ", ".join(str(shutil.which(t)) for t in tools),
                            required=required))


def _check_gnu_efi() -> Check:
    fix = platform_fix(GNU_EFI_FIXES)
    headers = next((d for d in EFI_INCLUDES if (d / "efi.h").is_file()), None)
    libdir = next((d for d in EFI_LIBDIRS if all((d / f).is_file() for f in EFI_LIBFILES)),
                  None)
    if headers is None or libdir is None:
        lacking = ("headers (efi.h)" if headers is None else "") + (
            " libraries (" + ", ".join(EFI_LIBFILES) + ")" if libdir is None else "")
        return Check("gnu-efi", "FAIL", "missing " + lacking.strip(), fix, required=False)
    return Check("gnu-efi", "OK", f"{headers}, {libdir}", required=False)


def probe_accel(accel: str, firmware: FirmwareFiles, binary: str,
                seconds: float = PROBE_SECONDS) -> Check:
    """Boot OVMF alone on ``accel``: OK once the firmware writes to the serial console."""
    board = qemu_board(f"doctor-{accel}", accel=accel, cpu="max", memory=256)
    name = f"accel {accel}"
    fix = ACCEL_FIXES.get(accel, "")
    with tempfile.TemporaryDirectory(prefix="bm-doctor-") as tmp:
        started = time.monotonic()
        try:
            proc = launch(board, None, Path(tmp), firmware=firmware, binary=binary)
        except BaremetalError as error:
            reason = classify(str(error), None, False) or str(error).splitlines()[0]
            return Check(name, "FAIL", reason, fix, required=accel == "tcg")
        try:
            proc.resume()
            seen = _first_bytes(proc.serial_socket, seconds, proc.returncode_probe())
            elapsed = time.monotonic() - started
            status = proc.status()
            if seen:
                return Check(name, "OK", f"OVMF printed after {elapsed:.1f} s",
                             required=accel == "tcg")
            reason = classify(proc.stderr_text(), status, False) or "no output"
            return Check(name, "FAIL", f"{reason} ({elapsed:.1f} s)", fix,
                         required=accel == "tcg")
        finally:
            proc.stop()


def _first_bytes(sock: object, seconds: float, alive: Callable[[], bool]) -> bool:
    """True as soon as anything arrives on ``sock`` within ``seconds``."""
    import socket

    assert isinstance(sock, socket.socket)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.2)
        if ready:
            try:
                return bool(sock.recv(256))
            except OSError:
                return False
        if not alive():
            return False
    return False


def list_boards(dirs: Iterable[Path], out: TextIO) -> int:
    """Print every board with its accelerator, CPU and features; 1 if any file is invalid."""
    dirs = list(dirs)
    paths = board_paths(dirs)
    if not paths:
        out.write("no boards found in " + ", ".join(str(d) for d in dirs) + "\n")
        return 1
    bad = 0
    width = max(len(name) for name in paths)
    for name, path in paths.items():
        try:
            board = load_board(path)
        except BaremetalError as error:
            bad += 1
            out.write(f"{name:<{width}}  INVALID  {error}\n")
            continue
        what = targets.summary(board)
        features = ",".join(board.features) or "-"
        out.write(f"{name:<{width}}  {what}  [{features}]  {board.description}\n")
    return 1 if bad else 0

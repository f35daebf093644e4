"""PXE delivery: stage the build into the board's TFTP root, and serve it.

``stage`` writes the EFI application as the board's bootfile, plus every file the build
carries (model, tokenizer, run.cfg), atomically, and removes what an earlier staging left.
``Dnsmasq`` runs a proxy-DHCP + TFTP service for one MAC address: it never hands out
addresses, so it coexists with the lab's DHCP server, and it answers only the board.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from pytest_baremetal.errors import BootError
from pytest_baremetal.qemu import reaper

MANIFEST = ".staged-by-pytest-baremetal"
#: what UEFI firmware prints when a PXE boot finds no server or no file (EDK II / OVMF,
#: and the wording of common vendor firmware)
PXE_FAILURES = (
    r"PXE-E\d\d",
    r"Boot Failed\. EFI Network",
    r"No valid offer received",
    r"Server response timeout",
    r"TFTP error",
    r"PXE boot failed",
    r"No more network devices",                        # iPXE gave up
    r"\(https?://ipxe\.org/[0-9a-f]{8}\)",              # any iPXE error
)


APP_NAME = "app.efi"


def ipxe_script(files: list[str], app: str = APP_NAME) -> str:
    """An iPXE script fetching every file, then starting the EFI application. iPXE shows
    the images it fetched as a file system on the application's device, which is where
    the guest reads model, tokenizer and run.cfg from."""
    lines = ["#!ipxe"] + [f"imgfetch tftp://${{next-server}}/{name}" for name in files]
    return "\n".join([*lines, f"chain tftp://${{next-server}}/{app}", ""])


def stage(root: Path, bootfile: str, efi: Path, files: Mapping[str, Path],
          ipxe: bool = False) -> list[str]:
    """Copies the build into ``root``; returns the staged names (bootfile first). With
    ``ipxe`` the bootfile is an iPXE script that fetches the files and chains the app."""
    root.mkdir(parents=True, exist_ok=True)
    if ipxe:
        script = root / f".{bootfile}.{os.getpid()}.src"
        script.write_text(ipxe_script(list(files)))
        wanted = {bootfile: script, APP_NAME: efi, **dict(files)}
    else:
        wanted = {bootfile: efi, **dict(files)}
    old = root / MANIFEST
    if old.is_file():
        for name in old.read_text().splitlines():
            if name and name not in wanted:
                with contextlib.suppress(OSError):
                    (root / name).unlink()
    for name, source in wanted.items():
        target = root / name
        if "/" in name or name.startswith("."):
            raise BootError(f"cannot stage {name!r} into the TFTP root: not a plain file name")
        part = root / f".{name}.{os.getpid()}.part"
        shutil.copyfile(source, part)
        os.chmod(part, 0o644)
        os.replace(part, target)
    old.write_text("\n".join(wanted) + "\n")
    if ipxe:
        script.unlink()
    return list(wanted)


def dnsmasq_argv(root: Path, bootfile: str, mac: str, subnet: str, interface: str | None,
                 run_dir: Path, executable: str = "dnsmasq") -> list[str]:
    """Proxy-DHCP for one MAC (``dhcp-mac`` tag), TFTP from ``root``, no DNS, foreground."""
    argv = [executable, "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
            f"--pid-file={run_dir / 'dnsmasq.pid'}",
            f"--log-facility={run_dir / 'dnsmasq.log'}", "--log-dhcp",
            f"--dhcp-range={subnet},proxy",
            f"--dhcp-mac=set:bmboard,{mac}",
            "--dhcp-ignore=tag:!bmboard",
            f"--pxe-service=tag:bmboard,x86-64_EFI,pytest-baremetal,{bootfile}",
            f"--dhcp-boot=tag:bmboard,{bootfile}",
            "--enable-tftp", f"--tftp-root={root}", "--tftp-secure"]
    if interface:
        argv += [f"--interface={interface}", "--bind-interfaces"]
    return argv


class Dnsmasq:
    """A dnsmasq for one board; stopped by ``stop()`` or at exit."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.argv = argv
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, settle: float = 0.5) -> None:
        if shutil.which(self.argv[0]) is None:
            raise BootError(f"{self.argv[0]} is not installed: sudo apt-get install "
                            "dnsmasq-base (needed for PXE with server dnsmasq)")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log.with_suffix(".stderr"), "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err, start_new_session=True)
        reaper.register(self.proc)
        time.sleep(settle)
        if self.proc.poll() is not None:
            code = self.proc.returncode
            self.stop()
            text = self.log.with_suffix(".stderr").read_text(errors="replace").strip()
            raise BootError(f"dnsmasq exited at once (status {code}): {text[-800:]}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        reaper.kill_group(proc, 15)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            reaper.kill_group(proc)
            proc.wait()
        reaper.unregister(proc)

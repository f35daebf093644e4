"""PXE delivery: stage the build into the board's TFTP root, and serve it.

``stage`` writes the EFI application as the board's bootfile, plus every file the build
carries (model, tokenizer, run.cfg), atomically, and removes what an earlier staging left.
``Dnsmasq`` runs a proxy-DHCP + TFTP service for one MAC address: it never hands out
addresses, so it coexists with the lab's DHCP server, and it answers only the board.

Started as root, dnsmasq serves TFTP as ``nobody``: the staged files are world-readable
(0644) and ``Dnsmasq.start`` refuses a TFTP root that ``nobody`` cannot reach, rather than
letting the firmware report a bare TFTP "permission denied" minutes later.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from pytest_baremetal import lifeline
from pytest_baremetal.errors import BootError, PxeError
from pytest_baremetal.targets.qemu import reaper

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
    # any iPXE error, except its link statistics: "[RXE: 2 x "Operation not supported
    # (http://ipxe.org/3c046083)"]" counts frames it ignored (IPv6, LLDP, ...), harmless
    r"^(?!\s*\[[RT]XE:).*\(https?://ipxe\.org/[0-9a-f]{8}\)",
)


APP_NAME = "app.efi"


def ipxe_script(files: list[str], app: str = APP_NAME) -> str:
    """An iPXE script fetching every file, then starting the EFI application. iPXE shows
    the images it fetched as a file system on the application's device, which is where
    the guest reads model, tokenizer and run.cfg from.

    The names are relative: iPXE resolves them against the script's own URI, i.e. the
    server that gave the script. ``${next-server}`` would not do: behind proxy-DHCP it is
    the lab's DHCP server (its siaddr wins over the proxy's), which has none of the files."""
    lines = ["#!ipxe"] + [f"imgfetch {name}" for name in files]
    return "\n".join([*lines, f"chain {app}", ""])


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


def unreachable_by_others(root: Path) -> Path | None:
    """The first of ``root`` and its parents that a process running as another, unprivileged
    user (dnsmasq's ``nobody``) cannot pass through or list; None when all is well."""
    root = root.resolve()
    for folder in [*reversed(root.parents), root]:
        try:
            mode = folder.stat().st_mode
        except OSError:
            return folder
        if not mode & 0o001 or (folder == root and not mode & 0o004):
            return folder
    return None


def dnsmasq_argv(root: Path, bootfile: str, mac: str, subnet: str, interface: str | None,
                 run_dir: Path, executable: str = "dnsmasq") -> list[str]:
    """Proxy-DHCP for one MAC (``dhcp-mac`` tag), TFTP from ``root``, no DNS, foreground.

    Everything it writes is in ``run_dir`` (the lease file too: even a proxy-only dnsmasq
    creates one, by default in /var/lib/misc). No ``--tftp-secure``: run as root, dnsmasq
    drops to ``nobody`` and secure mode then refuses every file the plugin staged (they
    belong to the plugin's user); the root holds only staged files and dnsmasq never
    serves outside it."""
    argv = [executable, "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
            f"--pid-file={run_dir / 'dnsmasq.pid'}",
            f"--dhcp-leasefile={run_dir / 'dnsmasq.leases'}",
            f"--log-facility={run_dir / 'dnsmasq.log'}", "--log-dhcp",
            f"--dhcp-range={subnet},proxy",
            f"--dhcp-mac=set:bmboard,{mac}",
            "--dhcp-ignore=tag:!bmboard",
            f"--pxe-service=tag:bmboard,x86-64_EFI,pytest-baremetal,{bootfile}",
            f"--dhcp-boot=tag:bmboard,{bootfile}",
            "--enable-tftp", f"--tftp-root={root}"]
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
        root = next((Path(a.split("=", 1)[1]) for a in self.argv
                     if a.startswith("--tftp-root=")), None)
        if root is not None and os.geteuid() == 0:
            closed = unreachable_by_others(root)
            if closed is not None:
                raise BootError(f"dnsmasq serves TFTP as user nobody, who cannot reach "
                                f"{closed} (mode {_mode(closed)}): put the TFTP root {root} "
                                "where every folder is world-readable (chmod o+rx)")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log.with_suffix(".stderr"), "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err, **lifeline.child_options())
        reaper.register(self.proc)
        time.sleep(settle)
        if self.proc.poll() is not None:
            code = self.proc.returncode
            self.stop()
            text = self.log.with_suffix(".stderr").read_text(errors="replace").strip()
            raise PxeError(f"dnsmasq exited at once (status {code}): {text[-800:]}")

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


def _mode(path: Path) -> str:
    try:
        return oct(path.stat().st_mode & 0o777)
    except OSError:
        return "missing"

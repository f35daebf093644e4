"""A simulated Skylake lab box: a USB-serial console and an LCUS relay, both on pty pairs,
and a QEMU (``-cpu Skylake-Client``) that the relay switches on and off.

The plugin drives it exactly as it drives a real box: it opens ``RUN/console`` with
pyserial at 115200 baud, sends LCUS frames to ``RUN/relay``, writes the disk image to
``RUN/disk.img`` or stages files into ``RUN/tftp`` (answered by QEMU's user-network TFTP
server on PXE; with ``--tap IFNAME`` the NIC is that tap device instead, and whoever serves
DHCP/TFTP on its network answers), and asks ``test -e RUN/machine-on`` whether the machine
is running.

    RUN/console      -> /dev/pts/N   the console adapter (sim keeps the master)
    RUN/relay        -> /dev/pts/M   the relay board (frames A0 ch state sum; FF = status)
    RUN/disk.img                     the box's disk (what a USB stick would hold)
    RUN/tftp/                        the TFTP root its PXE firmware fetches from
    RUN/machine-on                   exists while QEMU runs (the power LED)
    RUN/ready                        written once the above exist
    RUN/sim.log                      what the simulator did (frames, checksums, QEMU)

The QEMU serial port is one end of a loopback TCP connection made at each power-on and
inherited by QEMU (``-chardev socket,fd=N``): nothing listens once it is made, so no other
local process can take the machine's serial line. The simulator pumps the other end to the
console pty, keeping what the pty cannot take yet (a slow reader loses nothing), so the
console survives power cycles like a real adapter. SIGUSR1 "unplugs" the console
adapter for ``--replug-after`` seconds (the pty vanishes and comes back under a new node).
The simulator stops QEMU and exits on SIGTERM, or when its parent process goes away.

    python -m pytest_baremetal.targets.physical.sim --run-dir /tmp/bm-sim/sim-skylake
"""

from __future__ import annotations

import argparse
import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import tty
from pathlib import Path
from typing import Any

from pytest_baremetal import lifeline
from pytest_baremetal.firmware import find_firmware
from pytest_baremetal.targets.physical.lcus import HEADER, parse_frame
from pytest_baremetal.targets.qemu.process import Listener

#: Console bytes held for a slow reader; beyond that the oldest are lost, as in a real
#: adapter nobody reads (QEMU's socket is always read: a stalled UART makes the firmware's
#: serial driver drop or repeat bytes, tests/test_serial_integrity.py).
CONSOLE_BACKLOG = 16 << 20


class Pty:
    """A pty pair whose slave is reachable through a fixed symlink."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.node = os.ttyname(self.slave)
        tmp = link.with_name(link.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self.node)
        os.replace(tmp, link)

    def write(self, data: bytes) -> None:
        """Best effort (the relay's short answers)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.master, data)

    def write_some(self, data: bytes | bytearray) -> int:
        """As much of ``data`` as the pty takes now; how much that was."""
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.link.is_symlink() and os.readlink(self.link) == self.node:
                self.link.unlink()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class Simulator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run = Path(args.run_dir)
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / "tftp").mkdir(exist_ok=True)
        for stale in ("ready", "machine-on"):
            with contextlib.suppress(FileNotFoundError):
                (self.run / stale).unlink()
        self.log_file = open(self.run / "sim.log", "a", buffering=1)  # noqa: SIM115
        self.sel = selectors.DefaultSelector()
        self.console: Pty | None = None
        self.relay = Pty(self.run / "relay")
        self.sel.register(self.relay.master, selectors.EVENT_READ, "relay")
        self.serial: socket.socket | None = None
        # Console bytes the pty has not taken yet: QEMU writes far faster than 115200 baud,
        # and the pty holds a few KB while the plugin may be slow to read.
        self.to_console = bytearray()
        self.qemu: subprocess.Popen[bytes] | None = None
        self.relay_buf = b""
        self.on = False
        self.replug_at: float | None = None
        self.parent = os.getppid()
        self.stopping = False
        self.unplug_requested = False
        self.plug_console()

    def log(self, text: str) -> None:
        self.log_file.write(f"{time.strftime('%H:%M:%S')} {text}\n")

    # -- console adapter -----------------------------------------------------------------
    def plug_console(self) -> None:
        self.console = Pty(self.run / "console")
        self.sel.register(self.console.master, selectors.EVENT_READ, "console")
        self.log(f"console adapter at {self.console.node}")

    def unplug_console(self) -> None:
        if self.console is None:
            return
        self.sel.unregister(self.console.master)
        self.console.close()
        self.console = None
        self.to_console.clear()  # what was in the adapter is gone with it
        self.replug_at = time.monotonic() + self.args.replug_after
        self.log("console adapter unplugged")

    # -- the machine ---------------------------------------------------------------------
    def qemu_argv(self, serial_fd: int) -> list[str]:
        """QEMU's command line; its serial port is the inherited socket ``serial_fd``."""
        fw = find_firmware()
        firmware = (["-bios", str(fw.unified)] if fw.unified else
                    ["-drive", f"if=pflash,format=raw,readonly=on,file={fw.code}",
                     "-drive", f"if=pflash,format=raw,snapshot=on,file={fw.vars}"])
        argv = ["qemu-system-x86_64", "-name", f"simbox:{self.run}", "-nodefaults",
                "-no-user-config", "-machine", "pc",
                "-accel", "tcg", "-cpu", self.args.cpu, "-m", self.args.memory, "-smp", "1",
                *firmware, "-display", "none", "-vga", "none", "-monitor", "none",
                "-chardev", f"socket,id=ser0,fd={serial_fd}",
                "-serial", "chardev:ser0"]
        disk = self.run / "disk.img"
        if disk.is_file() and disk.stat().st_size > 0:
            argv += ["-drive", f"file={disk},format=raw,if=none,id=disk0,snapshot=on",
                     "-device", f"ide-hd,drive=disk0,bootindex={1 if self.args.pxe else 0}"]
        if self.args.tap:
            # a real network: whoever serves DHCP/TFTP on it answers the box's PXE ROM
            argv += ["-netdev", f"tap,id=net0,ifname={self.args.tap},script=no,downscript=no",
                     "-device", f"{self.args.nic},netdev=net0,mac={self.args.mac}"
                     + (",bootindex=0" if self.args.pxe else "")]
        elif self.args.pxe:
            netdev = (f"user,id=net0,restrict=on,tftp={self.run / 'tftp'},"
                      f"bootfile={self.args.bootfile}")
            argv += ["-netdev", netdev, "-device",
                     f"{self.args.nic},netdev=net0,mac={self.args.mac},bootindex=0"]
        return argv

    def power(self, on: bool) -> None:
        if on == self.on:
            return
        self.on = on
        if on:
            # over loopback TCP, as the plugin's own QEMU console: on a Unix socket pair
            # QEMU's one-byte sends fill the buffer within a few hundred bytes, its UART
            # stalls while this process is descheduled, and the firmware drops bytes
            pair = Listener.pair(tcp=True)
            ours, theirs = pair.connected, pair.child_end
            assert ours is not None and theirs is not None
            try:
                argv = self.qemu_argv(theirs.fileno())
                self.log("relay on: starting " + " ".join(argv))
                with open(self.run / "qemu.stderr", "wb") as err:
                    self.qemu = subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                        pass_fds=(theirs.fileno(),),
                        preexec_fn=lifeline.dies_with_this_process())
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()  # QEMU has its copy
            self.drop_serial()
            self.serial = ours
            self.sel.register(ours, selectors.EVENT_READ, "serial")
            (self.run / "machine-on").write_text(f"{self.qemu.pid}\n")
        else:
            self.log("relay off: cutting power")
            self.stop_qemu()

    def stop_qemu(self) -> None:
        proc, self.qemu = self.qemu, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()
        self.drop_serial()
        with contextlib.suppress(FileNotFoundError):
            (self.run / "machine-on").unlink()

    def drop_serial(self) -> None:
        if self.serial is not None:
            self.sel.unregister(self.serial)
            self.serial.close()
            self.serial = None

    def flush_console(self) -> None:
        """Hand the pty what it takes now; the rest waits, watched, for room in it."""
        if self.console is None:  # no adapter plugged: nobody hears the UART
            self.to_console.clear()
            return
        del self.to_console[:-CONSOLE_BACKLOG]  # a reader gone for good: keep the newest
        taken = -1
        while self.to_console and taken != 0:
            try:
                taken = self.console.write_some(self.to_console)
            except OSError:
                self.to_console.clear()
                break
            del self.to_console[:taken]
        waiting = selectors.EVENT_WRITE if self.to_console else 0
        self.sel.modify(self.console.master, selectors.EVENT_READ | waiting, "console")

    # -- the relay -----------------------------------------------------------------------
    def on_relay(self, data: bytes) -> None:
        self.relay_buf += data
        while self.relay_buf:
            if self.relay_buf[0] == 0xFF:
                self.relay_buf = self.relay_buf[1:]
                if self.args.query:
                    states = "".join(
                        f"CH{ch}: {'ON' if ch == self.args.channel and self.on else 'OFF'}\r\n"
                        for ch in (1, 2, 3, 4))
                    self.relay.write(states.encode())
                continue
            if self.relay_buf[0] != HEADER:
                self.log(f"relay: junk byte {self.relay_buf[0]:#04x} ignored")
                self.relay_buf = self.relay_buf[1:]
                continue
            if len(self.relay_buf) < 4:
                return
            chunk, self.relay_buf = self.relay_buf[:4], self.relay_buf[4:]
            try:
                channel, on = parse_frame(chunk)
            except ValueError as error:
                self.log(f"relay: frame rejected: {error}")
                continue
            self.log(f"relay: frame {chunk.hex(' ')} channel {channel} "
                     f"{'on' if on else 'off'}")
            if channel == self.args.channel:
                self.power(on)

    # -- main loop -----------------------------------------------------------------------
    def serve(self) -> None:
        (self.run / "ready").write_text(f"{os.getpid()}\n")
        while not self.stopping:
            if os.getppid() != self.parent:
                self.log("parent gone: shutting down")
                break
            if self.unplug_requested:
                self.unplug_requested = False
                self.unplug_console()
            if self.replug_at is not None and time.monotonic() >= self.replug_at:
                self.replug_at = None
                self.plug_console()
            if self.qemu is not None and self.qemu.poll() is not None:
                self.log(f"machine powered itself off (QEMU status {self.qemu.returncode})")
                self.stop_qemu()
            for key, mask in self.sel.select(timeout=0.1):
                if key.data == "console" and mask & selectors.EVENT_WRITE:
                    self.flush_console()
                if mask & selectors.EVENT_READ:
                    self.handle(str(key.data), key.fileobj)
        self.shutdown()

    def handle(self, what: str, source: Any) -> None:
        if what == "serial":
            assert self.serial is not None
            try:
                data = self.serial.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.drop_serial()
            else:
                self.to_console += data
                self.flush_console()
        elif what == "console":
            assert self.console is not None
            data = _read(self.console.master)
            if data and self.serial is not None:
                with contextlib.suppress(OSError):
                    self.serial.sendall(data)
        elif what == "relay":
            data = _read(self.relay.master)
            if data:
                self.on_relay(data)

    def shutdown(self) -> None:
        self.stop_qemu()
        if self.console is not None:
            self.console.close()
        self.relay.close()
        with contextlib.suppress(FileNotFoundError):
            (self.run / "ready").unlink()
        self.log("simulator stopped")
        self.log_file.close()


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except (BlockingIOError, OSError):
        return b""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pytest_baremetal.targets.physical.sim",
                                     description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--cpu", default="Skylake-Client")
    parser.add_argument("--memory", default="2G")
    parser.add_argument("--nic", default="e1000")
    parser.add_argument("--mac", default="52:54:00:5b:1a:01")
    parser.add_argument("--pxe", action="store_true", help="boot from the network first")
    parser.add_argument("--bootfile", default="bootx64.efi")
    parser.add_argument("--tap", help="the NIC is this existing tap device (QEMU opens it in "
                        "the simulator's network namespace) instead of the user network")
    parser.add_argument("--channel", type=int, default=1, help="relay channel of the box")
    parser.add_argument("--query", action=argparse.BooleanOptionalAction, default=True,
                        help="answer the FF status query (multi-channel LCUS boards do)")
    parser.add_argument("--replug-after", type=float, default=2.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sim = Simulator(args)

    def stop(signum: int, frame: object) -> None:
        sim.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def unplug(signum: int, frame: object) -> None:
        sim.unplug_requested = True

    signal.signal(signal.SIGUSR1, unplug)
    sim.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())

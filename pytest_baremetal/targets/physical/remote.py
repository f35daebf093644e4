"""A labgrid place for one run: reserve (waiting its turn), acquire, find its serial ports,
release. Driven through ``labgrid-client``, labgrid's documented interface, so the plugin
does not depend on the client's internal Python API.

The place must carry the tag ``board=<place name>`` (``labgrid-client -p NAME set-tags
board=NAME``): a reservation filters places by tags, and the coordinator hands them out in
order of priority and age, so two runs contending for one box queue instead of failing.
A waiting reservation lives as long as ``labgrid-client wait`` polls it; an acquired one
until it is cancelled, which :meth:`RemotePlace.release` does after releasing the place.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_baremetal import lifeline
from pytest_baremetal.errors import BootError, LabError

if TYPE_CHECKING:
    import pytest

#: how long the exporter may take to publish the ser2net ports of a just-acquired place
PORTS_TIMEOUT = 15.0
#: after this long waiting for the place, say on the terminal who holds it
NOTICE_AFTER = 2.0

_RESERVATION = re.compile(r"Reservation '(?P<token>\w+)':.*?^\s*state: (?P<state>\w+)",
                          re.MULTILINE | re.DOTALL)
# `show` lists each acquired resource as a header and an indented pformat'ed dict:
#   Acquired resource 'console' (bm-sim/box/NetworkSerialPort/console):
#     {'acquired': 'sim-skylake-remote', ..., 'params': {'host': '127.0.0.1', 'port': 36789,
#      'speed': 115200, 'extra': {...}}}
_ACQUIRED = re.compile(r"^Acquired resource '(?P<name>[^']+)' \([^)]*/(?P<cls>\w+)/[^/)]*\):$")


def labgrid_tool(name: str = "labgrid-client") -> str:
    """A labgrid command on PATH, else beside this Python (an unactivated virtualenv)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise BootError(f"{name} not found: pip install 'pytest-baremetal[lab]'")
    return found


def parse_ports(show: str) -> dict[str, str | None]:
    """NetworkSerialPort name -> pyserial URL from ``labgrid-client show``; None while the
    exporter has not published the port yet."""
    ports: dict[str, str | None] = {}
    lines = show.splitlines()
    for i, line in enumerate(lines):
        match = _ACQUIRED.match(line)
        if match is None or match["cls"] != "NetworkSerialPort":
            continue
        block = []
        for more in lines[i + 1:]:
            if not more.startswith("  "):
                break
            block.append(more.strip())
        try:
            data: Any = ast.literal_eval(" ".join(block))
            params = data["params"]
        except (ValueError, SyntaxError, KeyError, TypeError):
            continue
        port = params.get("port")
        host = params.get("host")
        protocol = params.get("protocol", "rfc2217")
        # ser2net's local connector has no modem lines to set: like labgrid's SerialDriver,
        # do not wait for it to confirm them (pyserial would time out opening the port)
        options = "?ign_set_control" if protocol == "rfc2217" else ""
        ports[match["name"]] = f"{protocol}://{host}:{port}{options}" if port and host else None
    return ports


class RemotePlace:
    def __init__(self, coordinator: str, place: str, wait: float) -> None:
        self.coordinator = coordinator
        self.place = place
        self.wait = wait
        self.token: str | None = None
        self.acquired = False
        #: who we are to the coordinator: one user per run, so two runs on a host queue
        self.user = f"bm-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.env = dict(os.environ, LG_COORDINATOR=coordinator, LG_USERNAME=self.user)
        self.env.pop("LG_TOKEN", None)
        #: seconds spent waiting for another run to give the place back, and who held it
        self.waited = 0.0
        self.held_by = ""

    def _argv(self, *args: str) -> list[str]:
        return [labgrid_tool(), "-x", self.coordinator, *args]

    def _client(self, *args: str, timeout: float = 30.0) -> str:
        argv = self._argv(*args)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  env=self.env, check=False)
        except subprocess.TimeoutExpired as error:
            raise LabError(f"labgrid place {self.place}: `labgrid-client {' '.join(args)}` "
                            f"did not finish within {timeout:.0f} s") from error
        if done.returncode != 0:
            raise LabError(f"labgrid place {self.place} on {self.coordinator}: "
                            f"`labgrid-client {' '.join(args)}` failed: "
                            f"{(done.stderr or done.stdout).strip()[-600:]}")
        return done.stdout

    # -- acquire -------------------------------------------------------------------------
    def acquire(self) -> None:
        """Reserves the place and waits up to ``wait`` s for it, then acquires it."""
        out = self._client("reserve", f"board={self.place}")
        match = _RESERVATION.search(out)
        if match is None:
            raise LabError(f"labgrid place {self.place}: no reservation in {out!r}")
        self.token = match["token"]
        try:
            if match["state"] != "allocated":
                self._wait_turn()
            self._client("-p", f"+{self.token}", "acquire")
        except BaseException:
            self.release()
            raise
        self.acquired = True

    def _wait_turn(self) -> None:
        """Polls the reservation (``labgrid-client wait``) until the coordinator allocates
        the place to it, for up to ``wait`` s; says on the terminal whom it waits for."""
        assert self.token is not None
        start = time.monotonic()
        proc = subprocess.Popen(self._argv("wait", self.token), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=self.env, **lifeline.child_options())
        try:
            try:
                proc.wait(timeout=min(NOTICE_AFTER, self.wait))
            except subprocess.TimeoutExpired:
                if self.wait > NOTICE_AFTER:
                    self.held_by = self.status()
                    _notice(f"labgrid place {self.place} is busy ({self.held_by}); waiting "
                            f"up to {self.wait:.0f} s (physical.lock_wait) for it")
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=max(0.0, start + self.wait - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            self.waited = time.monotonic() - start
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode < 0:  # we killed it: not our turn
            raise LabError(f"labgrid place {self.place} on {self.coordinator} is not free: "
                            f"{self.status()}; waited {self.waited:.0f} s (physical.lock_wait "
                            "sets how long)")
        if proc.returncode != 0:
            raise LabError(f"labgrid place {self.place}: waiting for the reservation "
                            f"failed: {stderr.strip()[-600:]}")

    def status(self) -> str:
        """Why the place is not ours yet, for messages (never raises)."""
        try:
            out = self._client("-p", self.place, "show", timeout=15)
        except BootError as error:
            if "matches nothing" in str(error):
                return f"the coordinator has no place {self.place}"
            return f"its state is unknown ({error})"
        holder = re.search(r"^\s*acquired: (\S+)", out, re.MULTILINE)
        if holder is not None and holder.group(1) != "None":
            return f"held by {holder.group(1)}"
        if not re.search(rf"^\s*tags:.*\bboard={re.escape(self.place)}\b", out, re.MULTILINE):
            return f"it lacks the tag board={self.place} that reservations look for"
        return "reserved by another run"

    def describe(self) -> str:
        """What this run did to get the place (for boot-info.txt)."""
        text = f"labgrid place {self.place} on {self.coordinator} as {self.user}"
        if self.waited >= NOTICE_AFTER:
            text += f", after waiting {self.waited:.1f} s ({self.held_by or 'busy'})"
        return text

    # -- use -----------------------------------------------------------------------------
    def serial_ports(self) -> dict[str, str]:
        """NetworkSerialPort name -> pyserial URL (``rfc2217://host:port?...``), once the
        exporter has started ser2net for each (it does so when the place is acquired)."""
        deadline = time.monotonic() + PORTS_TIMEOUT
        while True:
            ports = parse_ports(self._client("-p", self.place, "show"))
            ready = {name: url for name, url in ports.items() if url is not None}
            if len(ready) == len(ports):
                return ready
            if time.monotonic() >= deadline:
                waiting = ", ".join(sorted(set(ports) - set(ready)))
                raise LabError(f"labgrid place {self.place}: the exporter did not publish "
                                f"the network port of {waiting} within {PORTS_TIMEOUT:.0f} s "
                                "(is ser2net installed on the exporter?)")
            time.sleep(0.3)

    # -- release -------------------------------------------------------------------------
    def release(self) -> None:
        """Releases the place and cancels the reservation (so the next run's is allocated
        now, not when this one expires); both are tried."""
        error: BootError | None = None
        if self.acquired:
            self.acquired = False
            try:
                self._client("-p", self.place, "release")
            except BootError as failed:
                error = failed
        if self.token is not None:
            token, self.token = self.token, None
            with contextlib.suppress(BootError):
                self._client("cancel-reservation", token)
        if error is not None:
            raise error


_show: Callable[[str], None] | None = None


def route_notices(config: pytest.Config) -> None:
    """Shows this module's notices (a run waiting for a busy place) on pytest's terminal,
    past output capture; ``pytest_configure`` calls it. Without it they go to the process's
    stderr, which pytest captures unless run with ``-s``."""
    global _show

    def show(text: str) -> None:
        capman: Any = config.pluginmanager.getplugin("capturemanager")
        reporter: Any = config.pluginmanager.getplugin("terminalreporter")
        if capman is None or reporter is None:  # an xdist worker: no terminal of its own
            _stderr(text)
            return
        with capman.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(text, yellow=True)

    _show = show


def _notice(text: str) -> None:
    line = f"[pytest-baremetal] {text}"
    if _show is None:
        _stderr(line)
    else:
        _show(line)


def _stderr(text: str) -> None:
    out = sys.__stderr__
    if out is not None:
        out.write(f"\n{text}\n")
        out.flush()

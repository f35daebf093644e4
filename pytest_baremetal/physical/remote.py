"""A labgrid place for one run: reserve (waiting its turn), acquire, find its serial ports,
release. Driven through ``labgrid-client``, labgrid's documented interface, so the plugin
does not depend on the client's internal Python API.

The place must carry the tag ``board=<place name>`` (``labgrid-client -p NAME set-tags
board=NAME``): a reservation filters places by tags, and the coordinator hands them out in
order, so two runs contending for one box queue instead of failing.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid

from pytest_baremetal.errors import BootError

_TOKEN = re.compile(r"^export LG_TOKEN=(\S+)", re.MULTILINE)
# `show` lists acquired resources with their parameters, e.g.
#   Acquired resource 'console' (exporter/sim/NetworkSerialPort/console):
#     {'host': '127.0.0.1', 'port': 36789, 'speed': 115200, 'protocol': 'rfc2217', ...}
_RESOURCE = re.compile(r"Acquired resource '(?P<name>[^']+)' \([^)]*NetworkSerialPort[^)]*\):"
                       r"\s*\{(?P<params>[^}]*)\}", re.DOTALL)


class RemotePlace:
    def __init__(self, coordinator: str, place: str, wait: float) -> None:
        self.coordinator = coordinator
        self.place = place
        self.wait = wait
        self.token: str | None = None
        self.acquired = False
        self.env = dict(os.environ, LG_COORDINATOR=coordinator,
                        LG_USERNAME=f"bm-{os.getpid()}-{uuid.uuid4().hex[:6]}")

    def _client(self, *args: str, timeout: float = 30.0) -> str:
        argv = ["labgrid-client", "-x", self.coordinator, *args]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  env=self.env, check=False)
        except subprocess.TimeoutExpired as error:
            raise BootError(f"labgrid place {self.place}: `{' '.join(argv[3:])}` did not "
                            f"finish within {timeout:.0f} s") from error
        except FileNotFoundError as error:
            raise BootError("labgrid-client not found: pip install "
                            "'pytest-baremetal[lab]'") from error
        if done.returncode != 0:
            raise BootError(f"labgrid place {self.place} on {self.coordinator}: "
                            f"`{' '.join(argv[3:])}` failed: "
                            f"{(done.stderr or done.stdout).strip()[-600:]}")
        return done.stdout

    def acquire(self) -> None:
        """Reserves the place and waits up to ``wait`` s for it, then acquires it."""
        out = self._client("reserve", "--shell", f"board={self.place}")
        match = _TOKEN.search(out)
        if match is None:
            raise BootError(f"labgrid place {self.place}: no reservation token in {out!r}")
        self.token = match.group(1)
        try:
            self._client("-p", f"+{self.token}", "wait", timeout=max(self.wait, 1.0))
        except BootError as error:
            self.release()
            raise BootError(f"labgrid place {self.place} is held by another run and was not "
                            f"free within {self.wait:.0f} s (physical.lock_wait): "
                            f"{error}") from error
        self._client("-p", f"+{self.token}", "acquire")
        self.acquired = True

    def serial_ports(self) -> dict[str, str]:
        """NetworkSerialPort name -> pyserial URL (``rfc2217://host:port``)."""
        out = self._client("-p", self.place, "show")
        ports: dict[str, str] = {}
        for match in _RESOURCE.finditer(out):
            params = dict(re.findall(r"'(\w+)': '?([^',]+)'?", match["params"]))
            ports[match["name"]] = f"{params.get('protocol', 'rfc2217')}://" \
                                   f"{params['host']}:{params['port']}"
        return ports

    def release(self) -> None:
        if self.acquired:
            self.acquired = False
            self._client("-p", self.place, "release")
        if self.token is not None:
            token, self.token = self.token, None
            subprocess.run(["labgrid-client", "-x", self.coordinator, "cancel-reservation",
                            token], capture_output=True, timeout=30, env=self.env, check=False)

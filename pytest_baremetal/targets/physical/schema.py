"""The ``physical:`` section of a board file -> a validated, frozen :class:`PhysicalSpec`.

Pure data: no labgrid, no pyserial, so ``boards.py`` validates physical boards on any host.
Every error is a :class:`ConfigError` naming the file and the dotted key (``physical.power.
lcus.channel``), the bad value and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_baremetal import runfolder, validate
from pytest_baremetal.errors import ConfigError

SECTION_KEYS = ("console", "power", "boot", "mac", "place", "off_wait", "lock_wait", "sim")
CONSOLE_FORMS = ("{udev: {PROPERTY: VALUE, ...}}", "{device: /dev/ttyUSB0}",
                 "{rfc2217: host:port}", "{remote: RESOURCE_NAME}")
POWER_FORMS = ("{lcus: {...}}", "{labgrid: {driver: ..., ...}}",
               "{command: {on: [...], off: [...]}}", "manual")
BOOT_FORMS = ("{pxe: {...}}", "disk", "{disk: {write_to: PATH} | {command: [...]}}")
PXE_SERVERS = ("dnsmasq", "external", "labgrid", "sim")
DEFAULT_BAUD = 115200
LCUS_BAUD = 9600
DEFAULT_OFF_WAIT = 3.0
DEFAULT_RECONNECT = 30.0
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_UDEV_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
_PLACE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class PortSpec:
    """Where a serial device is: udev properties, a device path, an RFC 2217 address, or a
    NetworkSerialPort of the acquired labgrid place (``remote``)."""

    udev: tuple[tuple[str, str], ...] = ()
    device: Path | None = None
    rfc2217: str | None = None
    remote: str | None = None
    baud: int = DEFAULT_BAUD

    def describe(self) -> str:
        if self.udev:
            return "udev " + " ".join(f"{k}={v}" for k, v in self.udev)
        if self.device is not None:
            return str(self.device)
        if self.rfc2217 is not None:
            return f"rfc2217://{self.rfc2217}"
        return f"labgrid resource {self.remote}"


@dataclass(frozen=True)
class ConsoleSpec:
    port: PortSpec
    #: how long a vanished adapter may take to come back before the console counts as closed
    reconnect: float = DEFAULT_RECONNECT


@dataclass(frozen=True)
class LcusSpec:
    port: PortSpec
    channel: int = 1
    #: the board answers the 0xFF status query (multi-channel LCUS boards do; LCUS-1 does not)
    query: bool = False
    timeout: float = 2.0


@dataclass(frozen=True)
class LabgridPowerSpec:
    driver: str
    args: tuple[tuple[str, Any], ...] = ()
    resource: str | None = None
    resource_args: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class CommandPowerSpec:
    on: tuple[str, ...]
    off: tuple[str, ...]
    timeout: float = 30.0


@dataclass(frozen=True)
class PowerSpec:
    """Exactly one of lcus, labgrid, command, or manual; ``sense`` optionally tells whether
    the machine itself is running (exit 0 on, 1 off)."""

    lcus: LcusSpec | None = None
    labgrid: LabgridPowerSpec | None = None
    command: CommandPowerSpec | None = None
    manual: bool = False
    sense: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return ("lcus" if self.lcus else "labgrid" if self.labgrid
                else "command" if self.command else "manual")


@dataclass(frozen=True)
class PxeSpec:
    tftp_root: Path
    bootfile: str = "bootx64.efi"
    #: who answers DHCP/TFTP: our dnsmasq (proxy-DHCP), the lab's own server, labgrid's
    #: TFTPProvider of the place, or the simulator (QEMU user-net TFTP)
    server: str = "dnsmasq"
    interface: str | None = None
    subnet: str | None = None
    #: the bootfile is an iPXE script (the NIC's ROM is iPXE, or chainloads ipxe.efi)
    ipxe: bool = False


@dataclass(frozen=True)
class DiskSpec:
    """The image on the machine's disk: already there, or written while the box is off."""

    write_to: Path | None = None
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class BootSpec:
    pxe: PxeSpec | None = None
    disk: DiskSpec | None = None

    @property
    def kind(self) -> str:
        return "pxe" if self.pxe else "disk"


@dataclass(frozen=True)
class SimSpec:
    """Start the simulated box (``pytest_baremetal.targets.physical.sim``) for this board."""

    run_dir: Path
    cpu: str = "Skylake-Client"
    memory: str = "2G"
    nic: str = "e1000"
    #: the box's NIC is this existing tap device (in the simulator's network namespace)
    #: instead of QEMU's user network: a real DHCP/TFTP server on that network answers PXE
    tap: str | None = None


@dataclass(frozen=True)
class PhysicalSpec:
    console: ConsoleSpec
    power: PowerSpec
    boot: BootSpec
    mac: str | None = None
    place: str | None = None
    off_wait: float = DEFAULT_OFF_WAIT
    #: how long to wait for a board another run holds (local lock or labgrid place)
    lock_wait: float = 0.0
    sim: SimSpec | None = None
    where: str = field(default="", compare=False)

    @property
    def ports(self) -> list[tuple[str, PortSpec]]:
        """Every serial port of the board, with its key: the console and the relay's."""
        ports = [("physical.console", self.console.port)]
        if self.power.lcus is not None:
            ports.append(("physical.power.lcus", self.power.lcus.port))
        return ports

    @property
    def remote_ports(self) -> list[str]:
        """The keys of the ports that are resources of the labgrid place."""
        return [key for key, port in self.ports if port.remote is not None]


# -- parsing ------------------------------------------------------------------------------

def parse(section: object, where: str, base: Path, name: str = "board") -> PhysicalSpec:
    """Validates a board's ``physical`` mapping; relative paths are relative to ``base``;
    ``{run}`` in a value is this run's own folder for the board (see runfolder.py)."""
    section = runfolder.expand(section, name)
    data = _mapping(section, where, "physical", "a mapping with console, power and boot")
    _known(data, SECTION_KEYS, where, "physical")
    for key in ("console", "power", "boot"):
        if key not in data:
            raise ConfigError(where, f"physical.{key}", f"missing required key {key!r}")
    sim = _sim(data.get("sim"), where, base)
    spec = PhysicalSpec(
        console=_console(data["console"], where, base),
        power=_power(data["power"], where, base),
        boot=_boot(data["boot"], where, base),
        mac=_mac(data.get("mac"), where),
        place=_place(data.get("place"), where),
        off_wait=_seconds(data.get("off_wait", DEFAULT_OFF_WAIT), where, "physical.off_wait",
                          allow_zero=True),
        lock_wait=_seconds(data.get("lock_wait", 0.0), where, "physical.lock_wait",
                           allow_zero=True),
        sim=sim,
        where=where,
    )
    if spec.boot.pxe is not None and spec.boot.pxe.server == "dnsmasq" and spec.mac is None:
        raise ConfigError(where, "physical.mac", "PXE with server dnsmasq needs the machine's "
                          "MAC address (the proxy-DHCP answers only that machine)")
    if spec.boot.pxe is not None and spec.boot.pxe.server == "sim" and sim is None:
        raise ConfigError(where, "physical.boot.pxe.server", "server sim needs a physical.sim "
                          "section (the simulator's QEMU answers PXE)")
    if spec.boot.pxe is not None and sim is not None:
        if spec.boot.pxe.server == "sim" and sim.tap is not None:
            raise ConfigError(where, "physical.sim.tap", "server sim answers PXE from QEMU's "
                              "user network, which a tap NIC replaces: drop tap, or use "
                              "server dnsmasq or external")
        if spec.boot.pxe.server != "sim" and sim.tap is None:
            raise ConfigError(where, "physical.sim.tap", f"server {spec.boot.pxe.server} "
                              "answers PXE on a real network: the simulated box needs a tap "
                              "NIC on it (sim: {tap: IFNAME})")
    if spec.remote_ports and spec.place is None:
        raise ConfigError(where, spec.remote_ports[0], "a remote resource needs "
                          "physical.place (the labgrid place it belongs to)")
    return spec


def _console(value: object, where: str, base: Path) -> ConsoleSpec:
    key = "physical.console"
    data = _mapping(value, where, key, " or ".join(CONSOLE_FORMS))
    _known(data, ("udev", "device", "rfc2217", "remote", "baud", "reconnect"), where, key)
    port = _port(data, where, key, base, DEFAULT_BAUD)
    reconnect = _seconds(data.get("reconnect", DEFAULT_RECONNECT), where, f"{key}.reconnect",
                         allow_zero=True)
    return ConsoleSpec(port=port, reconnect=reconnect)


def _port(data: Mapping[str, Any], where: str, key: str, base: Path, baud: int) -> PortSpec:
    given = [k for k in ("udev", "device", "rfc2217", "remote") if k in data]
    if len(given) != 1:
        problem = "no port given" if not given else f"give one port, not {', '.join(given)}"
        raise ConfigError(where, key, problem, allowed=CONSOLE_FORMS)
    baud_value = data.get("baud", baud)
    if (isinstance(baud_value, bool) or not isinstance(baud_value, int) or baud_value <= 0
            or baud_value > 100_000_000):
        raise ConfigError(where, f"{key}.baud", f"expected a baud rate such as 115200, "
                          f"got {baud_value!r}")
    form = given[0]
    value = data[form]
    if form == "udev":
        props = _mapping(value, where, f"{key}.udev", "a mapping like {ID_SERIAL_SHORT: A10K}")
        if not props:
            raise ConfigError(where, f"{key}.udev", "needs at least one udev property")
        pairs: list[tuple[str, str]] = []
        for prop, want in props.items():
            if not isinstance(prop, str) or not _UDEV_KEY.fullmatch(prop):
                raise ConfigError(where, f"{key}.udev.{prop}", "a udev property name is upper "
                                  "case, like ID_SERIAL_SHORT, ID_PATH or ID_VENDOR_ID")
            if isinstance(want, (dict, list)) or want is None:
                raise ConfigError(where, f"{key}.udev.{prop}", f"expected a value, got {want!r}")
            pairs.append((prop, str(want)))
        return PortSpec(udev=tuple(pairs), baud=baud_value)
    if not isinstance(value, str) or not value:
        raise ConfigError(where, f"{key}.{form}", f"expected a string, got {value!r}")
    if form == "device":
        return PortSpec(device=_path(value, base), baud=baud_value)
    if form == "rfc2217":
        if not re.fullmatch(r"[A-Za-z0-9_.:\[\]-]+:\d{1,5}", value):
            raise ConfigError(where, f"{key}.rfc2217", f"expected host:port, got {value!r}")
        return PortSpec(rfc2217=value, baud=baud_value)
    return PortSpec(remote=value, baud=baud_value)


def _power(value: object, where: str, base: Path) -> PowerSpec:
    key = "physical.power"
    if value == "manual":
        return PowerSpec(manual=True)
    data = _mapping(value, where, key, " or ".join(POWER_FORMS))
    _known(data, ("lcus", "labgrid", "command", "manual", "sense"), where, key)
    sense = _argv(data["sense"], where, f"{key}.sense") if "sense" in data else ()
    given = [k for k in ("lcus", "labgrid", "command", "manual") if k in data]
    if len(given) != 1:
        problem = "no power control given" if not given else f"give one of {', '.join(given)}"
        raise ConfigError(where, key, problem, allowed=POWER_FORMS)
    form = given[0]
    if form == "manual":
        return PowerSpec(manual=True, sense=sense)
    if form == "lcus":
        sub = f"{key}.lcus"
        lcus = _mapping(data["lcus"], where, sub, "{device: /dev/ttyUSB1, channel: 1}")
        _known(lcus, ("udev", "device", "rfc2217", "remote", "baud", "channel", "query",
                      "timeout"), where, sub)
        channel = lcus.get("channel", 1)
        if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 8:
            raise ConfigError(where, f"{sub}.channel", f"expected a relay channel 1..8, "
                              f"got {channel!r}")
        query = lcus.get("query", False)
        if not isinstance(query, bool):
            raise ConfigError(where, f"{sub}.query", f"expected true or false, got {query!r}")
        spec = LcusSpec(port=_port(lcus, where, sub, base, LCUS_BAUD), channel=channel,
                        query=query, timeout=_seconds(lcus.get("timeout", 2.0), where,
                                                      f"{sub}.timeout"))
        return PowerSpec(lcus=spec, sense=sense)
    if form == "labgrid":
        sub = f"{key}.labgrid"
        lg = _mapping(data["labgrid"], where, sub, "{driver: NetworkPowerDriver, ...}")
        _known(lg, ("driver", "args", "resource", "resource_args"), where, sub)
        driver = lg.get("driver")
        if not isinstance(driver, str) or not driver.endswith("Driver"):
            raise ConfigError(where, f"{sub}.driver", f"expected a labgrid power driver class "
                              f"such as NetworkPowerDriver, got {driver!r}")
        resource = lg.get("resource")
        if resource is not None and not isinstance(resource, str):
            raise ConfigError(where, f"{sub}.resource", f"expected a resource class name, "
                              f"got {resource!r}")
        args = _mapping(lg.get("args") or {}, where, f"{sub}.args", "a mapping")
        rargs = _mapping(lg.get("resource_args") or {}, where, f"{sub}.resource_args",
                         "a mapping")
        return PowerSpec(labgrid=LabgridPowerSpec(driver, tuple(args.items()), resource,
                                                  tuple(rargs.items())), sense=sense)
    sub = f"{key}.command"
    cmd = _mapping(data["command"], where, sub, "{on: [argv...], off: [argv...]}")
    _known(cmd, ("on", "off", "timeout"), where, sub)
    for verb in ("on", "off"):
        if verb not in cmd:
            raise ConfigError(where, f"{sub}.{verb}", f"missing required key {verb!r}")
    return PowerSpec(command=CommandPowerSpec(
        on=_argv(cmd["on"], where, f"{sub}.on"), off=_argv(cmd["off"], where, f"{sub}.off"),
        timeout=_seconds(cmd.get("timeout", 30.0), where, f"{sub}.timeout")), sense=sense)


def _boot(value: object, where: str, base: Path) -> BootSpec:
    key = "physical.boot"
    if value == "disk":
        return BootSpec(disk=DiskSpec())
    data = _mapping(value, where, key, " or ".join(BOOT_FORMS))
    _known(data, ("pxe", "disk"), where, key)
    if len(data) != 1:
        raise ConfigError(where, key, "give exactly one boot method", allowed=BOOT_FORMS)
    if "disk" in data:
        sub = f"{key}.disk"
        disk = _mapping(data["disk"] or {}, where, sub, "{write_to: PATH} or {command: [...]}")
        _known(disk, ("write_to", "command"), where, sub)
        if len(disk) > 1:
            raise ConfigError(where, sub, "give write_to or command, not both")
        write_to = disk.get("write_to")
        if write_to is not None and (not isinstance(write_to, str) or not write_to):
            raise ConfigError(where, f"{sub}.write_to", f"expected a path, got {write_to!r}")
        command = _argv(disk["command"], where, f"{sub}.command") if "command" in disk else ()
        if command and not any("{image}" in a for a in command):
            raise ConfigError(where, f"{sub}.command", "the command must contain {image} "
                              "(where the disk image to write goes)")
        return BootSpec(disk=DiskSpec(_path(write_to, base) if write_to else None, command))
    sub = f"{key}.pxe"
    pxe = _mapping(data["pxe"], where, sub, "{tftp_root: DIR, bootfile: bootx64.efi}")
    _known(pxe, ("tftp_root", "bootfile", "server", "interface", "subnet", "ipxe"), where, sub)
    ipxe = pxe.get("ipxe", False)
    if not isinstance(ipxe, bool):
        raise ConfigError(where, f"{sub}.ipxe", f"expected true or false, got {ipxe!r}")
    root = pxe.get("tftp_root")
    if not isinstance(root, str) or not root:
        raise ConfigError(where, f"{sub}.tftp_root", f"expected a directory, got {root!r}")
    bootfile = pxe.get("bootfile", "bootx64.efi")
    if not isinstance(bootfile, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", bootfile):
        raise ConfigError(where, f"{sub}.bootfile", f"expected a plain file name, "
                          f"got {bootfile!r}")
    server = pxe.get("server", "dnsmasq")
    if server not in PXE_SERVERS:
        raise ConfigError(where, f"{sub}.server", f"invalid value {server!r}",
                          allowed=PXE_SERVERS)
    strings: dict[str, str | None] = {}
    for opt in ("interface", "subnet"):
        item = pxe.get(opt)
        if item is not None and not isinstance(item, str):
            raise ConfigError(where, f"{sub}.{opt}", f"expected a string, got {item!r}")
        strings[opt] = item
    if server == "dnsmasq" and not strings["subnet"]:
        raise ConfigError(where, f"{sub}.subnet", "server dnsmasq needs the lab subnet (e.g. "
                          "192.168.10.0) for its proxy-DHCP range")
    return BootSpec(pxe=PxeSpec(_path(root, base), bootfile, str(server),
                                strings["interface"], strings["subnet"], ipxe))


def _sim(value: object, where: str, base: Path) -> SimSpec | None:
    if value is None:
        return None
    key = "physical.sim"
    data = _mapping(value, where, key, "{run_dir: DIR, cpu: Skylake-Client}")
    _known(data, ("run_dir", "cpu", "memory", "nic", "tap"), where, key)
    run_dir = data.get("run_dir")
    if not isinstance(run_dir, str) or not run_dir:
        raise ConfigError(where, f"{key}.run_dir", f"expected a directory, got {run_dir!r}")
    out: dict[str, str] = {}
    for opt, default in (("cpu", "Skylake-Client"), ("memory", "2G"), ("nic", "e1000")):
        item = data.get(opt, default)
        if not isinstance(item, str) or not re.fullmatch(r"[A-Za-z0-9_.,+=-]+", item):
            raise ConfigError(where, f"{key}.{opt}", f"invalid value {item!r}")
        out[opt] = item
    tap = data.get("tap")
    if tap is not None and (not isinstance(tap, str)
                            or not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", tap)):
        raise ConfigError(where, f"{key}.tap", f"expected a network interface name (at most "
                          f"15 letters, digits, '_', '.', '-'), got {tap!r}")
    return SimSpec(_path(run_dir, base), tap=tap, **out)


# -- small helpers ------------------------------------------------------------------------

def _mapping(value: object, where: str, key: str, expected: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        shown = "nothing" if value is None else f"{type(value).__name__} {value!r}"
        raise ConfigError(where, key, f"expected {expected}, got {shown}")
    return value


def _known(data: Mapping[str, Any], allowed: tuple[str, ...], where: str, key: str) -> None:
    validate.known_keys(data, allowed, validate.Where(where, Path()), f"{key}.")


def _argv(value: object, where: str, key: str) -> tuple[str, ...]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) for v in value)):
        raise ConfigError(where, key, f"expected a command as a list of strings (no shell), "
                          f"got {value!r}")
    return tuple(value)


def _seconds(value: object, where: str, key: str, allow_zero: bool = False) -> float:
    return validate.seconds(value, validate.Where(where, Path()), key, allow_zero=allow_zero)


def _mac(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _MAC.fullmatch(value.lower()):
        raise ConfigError(where, "physical.mac", f"expected a MAC address like "
                          f"52:54:00:12:34:56, got {value!r}")
    return value.lower()


def _place(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _PLACE.fullmatch(value):
        raise ConfigError(where, "physical.place", f"expected a labgrid place name, "
                          f"got {value!r}")
    return value


def _path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path

"""The facts of a run (host, QEMU, firmware, boards) for Allure's environment block."""

from __future__ import annotations

import itertools
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

_FILE_OPTION = re.compile(r"(?:^|,)file=([^,]+)")
_RUN_TIMEOUT_S = 10.0


def _run(argv: Sequence[str]) -> str | None:
    """The stdout of a short command, or None if it is missing or fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_RUN_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def host_facts() -> dict[str, str]:
    """Host name, operating system, Python and the plugin's version."""
    try:
        version = metadata.version("pytest-baremetal")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "host": platform.node() or "unknown",
        "host.os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": sys.version.split()[0],
        "pytest-baremetal": version,
    }


def firmware_files(argv: Sequence[str]) -> list[Path]:
    """The firmware a QEMU command line boots: ``-bios FILE`` or its read-only pflash (CODE)."""
    found: list[Path] = []
    for option, value in itertools.pairwise(argv):
        if option == "-bios":
            found.append(Path(value))
        elif option == "-drive" and "if=pflash" in value and "readonly=on" in value:
            match = _FILE_OPTION.search(value)
            if match:
                found.append(Path(match.group(1)))
    return found


def firmware_version(path: Path) -> str:
    """``/usr/share/OVMF/OVMF_CODE_4M.fd (ovmf 2022.11-6)`` when a package owns the file."""
    owner = _run(["dpkg-query", "-S", str(path)])
    if owner:
        package = owner.split(":", 1)[0].strip()
        version = _run(["dpkg-query", "-W", "-f=${Version}", package])
        if version:
            return f"{path} ({package} {version})"
    return str(path)


def boot_facts(boots: Iterable[tuple[str, str, Mapping[str, str]]]) -> dict[str, str]:
    """Facts from the boots of a run, given as ``(board, accelerator, facts)``.

    ``facts`` are what each boot learned (its target's description): the QEMU version from
    its QMP greeting, the firmware files it booted. Nothing here runs a boot's command.
    """
    boots = list(boots)
    boards: list[str] = []
    qemus: list[str] = []
    firmware: dict[str, str] = {}
    for board, accelerator, facts in boots:
        entry = f"{board} ({accelerator})"
        if entry not in boards:
            boards.append(entry)
        qemu = facts.get("qemu")
        if qemu and qemu not in qemus:
            qemus.append(qemu)
        for path in _firmware_paths(facts):
            if path not in firmware:
                firmware[path] = firmware_version(Path(path))
    found = {"boards": ", ".join(boards)} if boards else {}
    if qemus:
        found["qemu"] = "; ".join(qemus)
    if firmware:
        found["firmware"] = "; ".join(firmware.values())
    return found | board_blocks(boots, firmware)


def _firmware_paths(facts: Mapping[str, str]) -> list[str]:
    return [p for p in facts.get("firmware", "").split("; ") if p]


def board_blocks(boots: Iterable[tuple[str, str, Mapping[str, str]]],
                 firmware: Mapping[str, str]) -> dict[str, str]:
    """One block per board (``<board>.accelerator``, ``.qemu``, ``.firmware``), so a report
    gathering several boards' runs shows each board's facts, not the last run's."""
    found: dict[str, list[str]] = {}
    for board, accelerator, facts in boots:
        for key, value in ((f"{board}.accelerator", accelerator),
                           (f"{board}.qemu", facts.get("qemu", "")),
                           *((f"{board}.firmware", firmware.get(p, p))
                             for p in _firmware_paths(facts))):
            if value and value not in found.setdefault(key, []):
                found[key].append(value)
    return {key: "; ".join(values) for key, values in found.items() if values}


def read_environment(path: Path) -> dict[str, str]:
    """The facts of an ``environment.properties`` this module wrote (empty if none)."""
    if not path.is_file():
        return {}
    facts: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PROPERTY.match(line)
        if match:
            key = re.sub(r"\\(.)", r"\1", match.group(1))
            facts[key] = re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(1)),
                                match.group(2))
    return facts


_PROPERTY = re.compile(r"((?:[^\\=]|\\.)*)=(.*)")
_UNESCAPE = {"n": "\n", "r": "\r"}


def _escape(text: str, key: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    out = out.replace("=", "\\=").replace(":", "\\:") if key else out
    return out.replace(" ", "\\ ") if key else out


def write_environment(results_dir: Path, facts: Mapping[str, str]) -> Path:
    """Writes ``environment.properties`` (Java properties, which both Allure 2 and 3 read)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "environment.properties"
    earlier = read_environment(path)  # another run (board) wrote into the same results
    boards = [b for b in (earlier.get("boards", "") + ", " + facts.get("boards", "")).split(", ")
              if b]
    facts = {**earlier, **facts}
    if boards:
        facts["boards"] = ", ".join(dict.fromkeys(boards))
    lines = [f"{_escape(k, key=True)}={_escape(str(v))}" for k, v in facts.items() if v]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

"""The facts of a run (host, QEMU, firmware, boards) for Allure's environment block."""

from __future__ import annotations

import itertools
import platform
import re
import shutil
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


def qemu_version(binary: str) -> str | None:
    """``QEMU emulator version 7.2.x (Debian ...)`` for this binary, or None."""
    path = shutil.which(binary) or binary
    out = _run([path, "--version"])
    return out.splitlines()[0].strip() if out else None


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


def boot_facts(boots: Iterable[tuple[str, str, Sequence[str]]]) -> dict[str, str]:
    """Facts from the boots of a run, given as ``(board, accelerator, argv)``.

    QEMU and firmware versions come from the command lines actually run.
    """
    boards: list[str] = []
    qemus: dict[str, str] = {}
    firmware: dict[Path, str] = {}
    for board, accelerator, argv in boots:
        entry = f"{board} ({accelerator})"
        if entry not in boards:
            boards.append(entry)
        if argv and argv[0] not in qemus:
            qemus[argv[0]] = qemu_version(argv[0]) or argv[0]
        for path in firmware_files(argv):
            if path not in firmware:
                firmware[path] = firmware_version(path)
    facts = {"boards": ", ".join(boards)} if boards else {}
    if qemus:
        facts["qemu"] = "; ".join(dict.fromkeys(qemus.values()))
    if firmware:
        facts["firmware"] = "; ".join(firmware.values())
    return facts


def _escape(text: str, key: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    out = out.replace("=", "\\=").replace(":", "\\:") if key else out
    return out.replace(" ", "\\ ") if key else out


def write_environment(results_dir: Path, facts: Mapping[str, str]) -> Path:
    """Writes ``environment.properties`` (Java properties, which both Allure 2 and 3 read)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "environment.properties"
    lines = [f"{_escape(k, key=True)}={_escape(str(v))}" for k, v in facts.items() if v]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

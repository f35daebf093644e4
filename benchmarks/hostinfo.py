"""The host a figure was measured on: CPU model, family/model, vector flags, QEMU versions."""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

VECTOR_FLAGS = re.compile(r"^(sse\S*|ssse3|avx\S*|fma\S*|f16c|amx\S*)$")


def host_cpu() -> str:
    """Two lines: model name, vendor, family/model; then the vector extensions."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()} (no /proc/cpuinfo)"
    info: dict[str, str] = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    all_flags = info.get("flags", "").split()
    flags = [f for f in all_flags if VECTOR_FLAGS.match(f)]
    hv = " (under a hypervisor)" if "hypervisor" in all_flags else ""
    return (f"{info.get('model name', '?')}, {info.get('vendor_id', '?')} family "
            f"{info.get('cpu family', '?')} model {info.get('model', '?')}{hv}\n"
            f"host vector flags: {' '.join(flags) or '-'}")


def qemu_version(binary: str = "qemu-system-x86_64") -> str:
    """The first line of `binary --version`, or why there is none."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return f"{binary} not found"
    return out.splitlines()[0] if out else "?"

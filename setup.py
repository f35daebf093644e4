"""Wheel build hook: the wheel carries the QEMU boards, the prebuilt reference guest (its EFI
application, model and tokenizer) and the suites, so an installed plugin works from any
folder. The guest is built with make first when it is missing or older than its sources.

Everything else is in pyproject.toml. An editable install (pip install -e .) copies nothing:
the checkout's own boards/, guest/ and suites/ are used in place.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
GUEST = HERE / "guest"
EFI = GUEST / "build" / "BOOTX64.EFI"
MODEL = GUEST / "models" / "tiny"
BOARDS = ("qemu-tcg", "qemu-tcg-noavx", "qemu-tcg-icount", "qemu-q35", "qemu-kvm",
          "qemu-whpx")  # pytest_baremetal.resources.WHEEL_BOARDS
SUITES_INIT = '"""The suites that ship with pytest-baremetal: pytest --pyargs ' \
    'pytest_baremetal.suites --target=qemu-tcg"""\n'


def _stale(target: Path, sources: Path) -> bool:
    if not target.is_file():
        return True
    built = target.stat().st_mtime_ns
    return any(p.stat().st_mtime_ns > built for p in sources.rglob("*") if p.is_file())


def build_guest() -> Path:
    if _stale(EFI, GUEST / "src"):
        result = subprocess.run(["make", "-C", str(GUEST)], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0 or not EFI.is_file():
            raise SystemExit("the wheel carries the reference guest and building it failed "
                             f"(make -C {GUEST}; needs gcc, make and gnu-efi):\n"
                             + result.stdout[-2000:] + result.stderr[-2000:])
    return EFI


class BuildWithGuest(build_py):
    """build_py, then the boards, the guest and the suites as package data."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        package = Path(self.build_lib) / "pytest_baremetal"
        boards = package / "data" / "boards"
        guest = package / "data" / "guest"
        suites = package / "suites"
        for folder in (boards, guest, suites):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        for name in BOARDS:
            shutil.copy2(HERE / "boards" / f"{name}.yaml", boards)
        shutil.copy2(build_guest(), guest / "BOOTX64.EFI")
        for name in ("model.bin", "tokenizer.bin", "README.md"):
            shutil.copy2(MODEL / name, guest)
        for test in sorted((HERE / "suites").glob("*.py")):
            shutil.copy2(test, suites)
        (suites / "__init__.py").write_text(SUITES_INIT)


setup(cmdclass={"build_py": BuildWithGuest})

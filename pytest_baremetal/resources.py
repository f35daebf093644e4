"""What ships with the plugin: the QEMU boards, the prebuilt reference guest, the suites.

An installed wheel carries them as package data (``pytest_baremetal/data/boards``,
``pytest_baremetal/data/guest``, ``pytest_baremetal/suites``), copied there by the wheel
build (``setup.py``). A source checkout uses its own ``boards/``, ``guest/`` and ``suites/``
instead, so ``make -C guest`` keeps working as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
DATA = PACKAGE / "data"
CHECKOUT = PACKAGE.parent
# The boards a wheel carries: the QEMU ones, which need nothing but QEMU and OVMF.
WHEEL_BOARDS = ("qemu-tcg", "qemu-tcg-noavx", "qemu-tcg-icount", "qemu-q35", "qemu-kvm",
                "qemu-whpx")
GUEST_FILES = ("BOOTX64.EFI", "model.bin", "tokenizer.bin")


def _is_checkout() -> bool:
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "guest" / "Makefile").is_file()


def packaged_boards() -> Path | None:
    """The folder of boards that come with the plugin (the wheel's, or the checkout's)."""
    if (DATA / "boards").is_dir():
        return DATA / "boards"
    if _is_checkout() and (CHECKOUT / "boards").is_dir():
        return CHECKOUT / "boards"
    return None


def bundled_suites() -> Path | None:
    """The folder of the suites users run (``pytest_baremetal/suites`` in a wheel)."""
    for folder in (PACKAGE / "suites", CHECKOUT / "suites"):
        if (folder / "test_boot.py").is_file():
            return folder
    return None


@dataclass(frozen=True)
class ReferenceGuest:
    """Where the reference guest comes from: a checkout's sources or the wheel's build."""

    efi: Path
    model_dir: Path
    source: Path | None  # guest/ with its Makefile, when it can be rebuilt here

    @property
    def prebuilt(self) -> bool:
        return self.source is None


def reference_guest_location(checkout: Path | None = None) -> ReferenceGuest | None:
    """The checkout's guest (built with make) first, else the wheel's prebuilt one."""
    if checkout is not None and (checkout / "guest" / "Makefile").is_file():
        guest = checkout / "guest"
        return ReferenceGuest(guest / "build" / "BOOTX64.EFI", guest / "models" / "tiny", guest)
    if _is_checkout():
        guest = CHECKOUT / "guest"
        return ReferenceGuest(guest / "build" / "BOOTX64.EFI", guest / "models" / "tiny", guest)
    packaged = DATA / "guest"
    if all((packaged / name).is_file() for name in GUEST_FILES):
        return ReferenceGuest(packaged / "BOOTX64.EFI", packaged, None)
    return None

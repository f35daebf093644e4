"""What gets booted: the reference guest, a user's EFI application, or a ready disk image."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_baremetal import resources
from pytest_baremetal.errors import BootError, ConfigError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.image import compose_image


@dataclass(frozen=True)
class BuildUnderTest:
    """An EFI application plus the files beside it, or a ready image."""

    efi: Path | None = None
    files: Mapping[str, Path] = field(default_factory=dict)
    image: Path | None = None
    config_file: str | None = None

    def __post_init__(self) -> None:
        if (self.efi is None) == (self.image is None):
            raise ConfigError("exactly one of an EFI application or a disk image must be given")
        for what, path in [("EFI application", self.efi), ("disk image", self.image)]:
            if path is not None and not path.is_file():
                raise ConfigError(f"{what} {path} does not exist; build it or fix the path")
        for name, path in self.files.items():
            if not path.is_file():
                raise ConfigError(f"file {name}={path} for the EFI partition does not exist")

    @property
    def takes_config(self) -> bool:
        return self.efi is not None and self.config_file is not None

    def disk_for(self, config: GuestConfig, cache_dir: Path) -> Path:
        """The disk image booted with this configuration, composed once and cached."""
        if self.image is not None:
            if config.items:
                raise ConfigError(
                    f"a ready disk image ({self.image}) cannot take guest settings "
                    f"{config.label()}; use --bm-efi with the profile's config file instead"
                )
            return self.image
        assert self.efi is not None
        files = dict(self.files)
        digest = hashlib.sha256()
        for path in [self.efi, *files.values()]:
            stat = path.stat()
            digest.update(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        cfg_text = config.render() if self.config_file else ""
        digest.update(cfg_text.encode())
        key = digest.hexdigest()[:16]
        out_dir = cache_dir / key
        image = out_dir / "disk.img"
        if image.is_file():
            return image
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.config_file:
            # this process's own copy: another run composing the same key reads its own
            cfg_path = out_dir / f"{self.config_file}.{os.getpid()}"
            cfg_path.write_text(cfg_text)
            files[self.config_file] = cfg_path
        partial = out_dir / f"disk.img.{os.getpid()}.part"
        compose_image(partial, self.efi, files)
        os.replace(partial, image)
        if self.config_file:
            os.replace(cfg_path, out_dir / self.config_file)
        return image


def reference_guest(checkout: Path | None = None, model_dir: Path | None = None
                    ) -> BuildUnderTest:
    """The reference guest: a checkout's (built with make when missing or stale) or the
    prebuilt one an installed wheel carries. ``checkout``: use that source tree's guest/."""
    where = resources.reference_guest_location(checkout)
    if where is None:
        raise ConfigError("this installation of pytest-baremetal carries no reference guest "
                          "(a wheel built without it?): reinstall the wheel, or pass "
                          "--bm-efi/--bm-image for your own build")
    guest = where.source
    if guest is not None and _stale(where.efi, guest / "src") and shutil.which("make"):
        with _build_lock(guest):  # xdist workers and parallel runs: one make at a time
            if _stale(where.efi, guest / "src"):
                result = subprocess.run(["make", "-C", str(guest)], capture_output=True,
                                        text=True, stdin=subprocess.DEVNULL)
                if result.returncode != 0:
                    raise BootError(f"building the reference guest failed (make -C {guest}):"
                                    f"\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    models = model_dir or where.model_dir
    files = {"model.bin": models / "model.bin", "tokenizer.bin": models / "tokenizer.bin"}
    return BuildUnderTest(efi=where.efi, files=files, config_file="run.cfg")


@contextlib.contextmanager
def _build_lock(guest: Path) -> Iterator[None]:
    """An exclusive lock on ``guest/build/.make.lock`` (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # Windows: no make of the reference guest there in practice
        yield
        return
    build = guest / "build"
    build.mkdir(exist_ok=True)
    fd = os.open(build / ".make.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _stale(target: Path, sources: Path) -> bool:
    if not target.is_file():
        return True
    built = target.stat().st_mtime_ns
    return any(p.stat().st_mtime_ns > built for p in sources.rglob("*") if p.is_file())

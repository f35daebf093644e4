"""Boot disk composition: a GPT disk with one FAT32 EFI System Partition.

The partition table is written here (protective MBR, primary and backup GPT headers and
partition arrays, CRC32s) and the FAT32 file system by :mod:`pytest_baremetal.fatfs`, in
pure Python: nothing needs mtools, root or a loop device, so Windows hosts with QEMU and
Python compose the same disks. The layout is the one UEFI firmware boots without a boot
entry:

    LBA 0          protective MBR (one partition of type 0xEE)
    LBA 1          primary GPT header
    LBA 2..33      primary partition array (128 entries of 128 bytes)
    1 MiB ..       the ESP: EFI/BOOT/BOOTX64.EFI plus the extra files at its root
    last MiB       unused, then the backup array (33 sectors before the end) and
    last LBA       the backup GPT header

Used by the plugin and by ``make -C guest image`` (through the command line below):

    python -m pytest_baremetal.image --efi BOOTX64.EFI --file model.bin=path ... -o disk.img
"""

from __future__ import annotations

import argparse
import math
import os
import struct
import sys
import uuid
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_baremetal import errors
from pytest_baremetal.fatfs import FatError, write_fat32

SECTOR = 512
MIB = 1024 * 1024
ESP_START_LBA = MIB // SECTOR  # the ESP starts at 1 MiB
ESP_OFFSET = ESP_START_LBA * SECTOR
ENTRY_COUNT = 128
ENTRY_SIZE = 128
ARRAY_SECTORS = ENTRY_COUNT * ENTRY_SIZE // SECTOR  # 32
HEADER_SIZE = 92
GPT_REVISION = 0x00010000
ESP_TYPE = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
ESP_NAME = "EFI System Partition"
BOOT_PATH = "EFI/BOOT/BOOTX64.EFI"
# FAT32 needs 65525 clusters of at least one sector: the smallest FAT32 is ~32 MiB.
MIN_ESP_MIB = 34

_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
_ENTRY = struct.Struct("<16s16sQQQ72s")


class ImageError(errors.ImageError):
    """The image cannot be made: the message names the file or the missing tool."""


def _crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def protective_mbr(total_sectors: int) -> bytes:
    """LBA 0: one partition of type 0xEE covering the disk (capped at 2^32-1 sectors)."""
    mbr = bytearray(SECTOR)
    size = min(total_sectors - 1, 0xFFFFFFFF)
    # status, CHS first (0/0/2), type, CHS last (max), first LBA, sector count
    entry = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1, size)
    mbr[446 : 446 + 16] = entry
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def partition_entry(first_lba: int, last_lba: int, unique: uuid.UUID) -> bytes:
    name = ESP_NAME.encode("utf-16-le").ljust(72, b"\x00")
    return _ENTRY.pack(ESP_TYPE.bytes_le, unique.bytes_le, first_lba, last_lba, 0, name)


def gpt_header(
    *,
    my_lba: int,
    alternate_lba: int,
    first_usable: int,
    last_usable: int,
    disk_guid: uuid.UUID,
    array_lba: int,
    array_crc: int,
) -> bytes:
    """One GPT header sector, its CRC32 computed over the 92 header bytes."""

    def pack(crc: int) -> bytes:
        return _HEADER.pack(
            b"EFI PART", GPT_REVISION, HEADER_SIZE, crc, 0, my_lba, alternate_lba,
            first_usable, last_usable, disk_guid.bytes_le, array_lba, ENTRY_COUNT,
            ENTRY_SIZE, array_crc,
        )

    header = pack(_crc32(pack(0)))
    return header.ljust(SECTOR, b"\x00")


def write_gpt(path: Path, total_sectors: int, esp_first: int, esp_last: int) -> None:
    """Writes the MBR and both GPT copies into an existing file of total_sectors."""
    disk_guid = uuid.uuid4()
    array = partition_entry(esp_first, esp_last, uuid.uuid4()).ljust(
        ENTRY_COUNT * ENTRY_SIZE, b"\x00"
    )
    array_crc = _crc32(array)
    last_lba = total_sectors - 1
    backup_array_lba = last_lba - ARRAY_SECTORS
    first_usable = 2 + ARRAY_SECTORS
    last_usable = backup_array_lba - 1
    primary = gpt_header(
        my_lba=1, alternate_lba=last_lba, first_usable=first_usable, last_usable=last_usable,
        disk_guid=disk_guid, array_lba=2, array_crc=array_crc,
    )
    backup = gpt_header(
        my_lba=last_lba, alternate_lba=1, first_usable=first_usable, last_usable=last_usable,
        disk_guid=disk_guid, array_lba=backup_array_lba, array_crc=array_crc,
    )
    with open(path, "r+b") as f:
        f.write(protective_mbr(total_sectors))
        f.write(primary)
        f.write(array)
        f.seek(backup_array_lba * SECTOR)
        f.write(array)
        f.write(backup)


def _check_name(name: str) -> str:
    """A destination path on the ESP: relative, '/'-separated, no '..'."""
    clean = name.replace("\\", "/").strip("/")
    parts = clean.split("/")
    if not clean or any(p in ("", ".", "..") for p in parts):
        raise ImageError(f"bad file name on the ESP: {name!r}")
    return clean


def default_size_mib(payload_bytes: int) -> int:
    """Disk size for payload_bytes of files: FAT overhead and headroom, 1 MiB either side."""
    esp = max(MIN_ESP_MIB, math.ceil(payload_bytes * 1.10 / MIB) + 8)
    return esp + 2


def compose_image(
    output: Path, efi: Path, files: Mapping[str, Path], size_mib: int | None = None
) -> Path:
    """Writes a bootable GPT disk image to output and returns output.

    efi goes to EFI/BOOT/BOOTX64.EFI; each files entry (destination name on the ESP ->
    host path) goes to the ESP, at its root unless the name has directories.
    """
    output = Path(output)
    sources: dict[str, Path] = {BOOT_PATH: Path(efi)}
    seen = {BOOT_PATH.lower(): BOOT_PATH}
    for name, source in files.items():
        dest = _check_name(name)
        if dest.lower() in seen:
            raise ImageError(f"{dest}: given twice (FAT names ignore case)")
        seen[dest.lower()] = dest
        sources[dest] = Path(source)
    for dest, source in sources.items():
        if not source.is_file():
            raise ImageError(f"{source}: no such file (for {dest} on the ESP)")

    payload = sum(source.stat().st_size for source in sources.values())
    if size_mib is None:
        size_mib = default_size_mib(payload)
    esp_mib = size_mib - 2
    if esp_mib < MIN_ESP_MIB:
        raise ImageError(f"{output}: {size_mib} MiB is too small (at least {MIN_ESP_MIB + 2})")
    if payload > esp_mib * MIB * 0.97:
        raise ImageError(
            f"{output}: {payload} bytes of files do not fit in a {size_mib} MiB image"
        )

    total_sectors = size_mib * MIB // SECTOR
    esp_sectors = esp_mib * MIB // SECTOR
    esp_last = ESP_START_LBA + esp_sectors - 1

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.truncate(total_sectors * SECTOR)
        write_gpt(tmp, total_sectors, ESP_START_LBA, esp_last)
        with open(tmp, "r+b") as f:
            try:
                write_fat32(f, ESP_OFFSET, esp_sectors, sources, label="ESP",
                            hidden_sectors=ESP_START_LBA)
            except FatError as error:
                raise ImageError(f"{output}: {error}") from None
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return output


def _parse_file(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected name=path, got {spec!r}")
    return name, Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_baremetal.image",
        description="Compose a GPT disk image with a FAT32 EFI System Partition.",
    )
    parser.add_argument("--efi", type=Path, required=True,
                        help="the UEFI application, installed as EFI/BOOT/BOOTX64.EFI")
    parser.add_argument("--file", type=_parse_file, action="append", default=[],
                        metavar="NAME=PATH", help="a file for the ESP (repeatable)")
    parser.add_argument("--size-mib", type=int, default=None,
                        help="disk size (default: from the contents, with headroom)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the image to write")
    args = parser.parse_args(argv)
    files: dict[str, Path] = {}
    for name, path in args.file:
        if name in files:
            parser.error(f"--file {name}= given twice")
        files[name] = path
    try:
        out = compose_image(args.output, args.efi, files, args.size_mib)
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = out.stat().st_size // MIB
    names = ", ".join([BOOT_PATH, *files])
    print(f"{out}: {size} MiB GPT disk, ESP at 1 MiB with {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

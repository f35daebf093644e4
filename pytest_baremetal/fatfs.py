"""A FAT32 file system written in pure Python, for the EFI System Partition.

No mtools, no root, no loop device: the plugin composes boot disks on any host with
Python (Windows included). Only what an ESP needs: directories and files written once,
long file names (VFAT) where a name is not a plain upper-case 8.3 name. Layout: 32 reserved
sectors (boot sector, FSInfo, backups at 6 and 7), two FATs, then clusters from 2 (the root
directory first, then the other directories, then each file contiguous).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

SECTOR = 512
RESERVED = 32
FATS = 2
MIN_CLUSTERS = 65525  # fewer clusters than this is FAT16 by definition
END = 0x0FFFFFFF
ATTR_DIR, ATTR_ARCHIVE, ATTR_VOLUME, ATTR_LFN = 0x10, 0x20, 0x08, 0x0F
# 2024-01-01 00:00: fixed, so an image depends only on its contents
DOS_DATE = ((2024 - 1980) << 9) | (1 << 5) | 1
DOS_TIME = 0
_SHORT_OK = re.compile(r"[A-Z0-9!#$%&'()@^_`{}~-]+")


class FatError(ValueError):
    """The files cannot be laid out: the message says which and why."""


@dataclass
class _Node:
    name: str
    source: Path | None = None  # None: a directory
    children: dict[str, _Node] = field(default_factory=dict)
    short: bytes = b""
    cluster: int = 0
    size: int = 0


def sectors_per_cluster(total_sectors: int) -> int:
    """Microsoft's table: 512-byte clusters up to 260 MiB, 4 KiB up to 8 GiB, then 8 KiB."""
    if total_sectors <= 532_480:
        return 1
    return 8 if total_sectors <= 16_777_216 else 16


def _fat_sectors(total_sectors: int, spc: int) -> tuple[int, int]:
    """(sectors per FAT, cluster count) for a volume of total_sectors."""
    fat = 1
    while True:
        clusters = (total_sectors - RESERVED - FATS * fat) // spc
        need = math.ceil((clusters + 2) * 4 / SECTOR)
        if need <= fat:
            return fat, clusters
        fat = need


def min_sectors() -> int:
    """The smallest FAT32 volume (512-byte clusters)."""
    fat = math.ceil((MIN_CLUSTERS + 2) * 4 / SECTOR)
    return RESERVED + FATS * fat + MIN_CLUSTERS


def _valid(part: str) -> bool:
    return bool(_SHORT_OK.fullmatch(part))


def _short_name(name: str, taken: set[bytes]) -> bytes:
    """The 11-byte 8.3 name: the name upper-cased when it fits, else a BASIS~N name."""
    base, _, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
    upper_base, upper_ext = base.upper(), ext.upper()
    if 1 <= len(base) <= 8 and len(ext) <= 3 and _valid(upper_base) \
            and (not ext or _valid(upper_ext)):
        short = upper_base.ljust(8).encode() + upper_ext.ljust(3).encode()
        if short not in taken:
            return short
    basis = "".join(c for c in upper_base if _valid(c)) or "FILE"
    basis_ext = "".join(c for c in upper_ext if _valid(c))[:3]
    for n in range(1, 1_000_000):
        tail = f"~{n}"
        short = (basis[: 8 - len(tail)] + tail).ljust(8).encode() + basis_ext.ljust(3).encode()
        if short not in taken:
            return short
    raise FatError(f"{name}: no free short name")


def _checksum(short: bytes) -> int:
    total = 0
    for byte in short:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def _lfn_entries(name: str, short: bytes) -> list[bytes]:
    units = name.encode("utf-16-le")
    chars = [units[i:i + 2] for i in range(0, len(units), 2)]
    if len(chars) > 255:
        raise FatError(f"{name}: longer than 255 characters")
    chunks = [chars[i:i + 13] for i in range(0, len(chars), 13)]
    if len(chunks[-1]) < 13:
        chunks[-1] = chunks[-1] + [b"\x00\x00"] + [b"\xff\xff"] * (12 - len(chunks[-1]))
    checksum = _checksum(short)
    entries = []
    for index, chunk in enumerate(chunks, start=1):
        seq = index | (0x40 if index == len(chunks) else 0)
        data = b"".join(chunk)
        entries.append(struct.pack("<B10sBBB12sH4s", seq, data[:10], ATTR_LFN, 0, checksum,
                                   data[10:22], 0, data[22:26]))
    return list(reversed(entries))


def _entry(short: bytes, attr: int, cluster: int, size: int) -> bytes:
    return struct.pack("<11sBBBHHHHHHHI", short, attr, 0, 0, DOS_TIME, DOS_DATE, DOS_DATE,
                       cluster >> 16, DOS_TIME, DOS_DATE, cluster & 0xFFFF, size)


def _tree(files: Mapping[str, Path]) -> _Node:
    root = _Node("")
    for dest, source in files.items():
        parts = dest.split("/")
        node = root
        for part in parts[:-1]:
            child = node.children.setdefault(part.lower(), _Node(part))
            if child.source is not None:
                raise FatError(f"{dest}: {part} is a file")
            node = child
        if parts[-1].lower() in node.children:
            raise FatError(f"{dest}: given twice (FAT names ignore case)")
        node.children[parts[-1].lower()] = _Node(parts[-1], source, size=source.stat().st_size)
    return root


def _dir_bytes(node: _Node, parent: int, is_root: bool, label: bytes) -> bytes:
    entries: list[bytes] = []
    if is_root:
        entries.append(_entry(label, ATTR_VOLUME, 0, 0))
    else:
        entries.append(_entry(b".          ", ATTR_DIR, node.cluster, 0))
        entries.append(_entry(b"..         ", ATTR_DIR, parent, 0))
    taken: set[bytes] = set()
    for child in node.children.values():
        if not child.short:
            child.short = _short_name(child.name, taken)
        taken.add(child.short)
        short_text = child.short[:8].decode().rstrip()
        ext = child.short[8:].decode().rstrip()
        if child.name != short_text + ("." + ext if ext else ""):
            entries += _lfn_entries(child.name, child.short)
        attr = ATTR_DIR if child.source is None else ATTR_ARCHIVE
        size = 0 if child.source is None else child.size  # a directory's size is 0
        entries.append(_entry(child.short, attr, child.cluster, size))
    return b"".join(entries)


def write_fat32(f: BinaryIO, offset: int, total_sectors: int, files: Mapping[str, Path],
                label: str = "ESP", hidden_sectors: int = 0, volume_id: int = 0x42B0_0042
                ) -> None:
    """Formats ``total_sectors`` at byte ``offset`` of ``f`` as FAT32 holding ``files``.

    ``files`` maps '/'-separated destination paths to host files.
    """
    spc = sectors_per_cluster(total_sectors)
    fat_sectors, clusters = _fat_sectors(total_sectors, spc)
    if clusters < MIN_CLUSTERS:
        raise FatError(f"{total_sectors} sectors are too few for FAT32 (at least "
                       f"{min_sectors()})")
    cluster_bytes = spc * SECTOR
    root = _tree(files)
    label_bytes = label.upper().encode("ascii")[:11].ljust(11)

    # Allocation: directories first (their size is known from their entry count), then files.
    dirs: list[tuple[_Node, int]] = [(root, 0)]
    order = [root]
    while order:
        node = order.pop(0)
        for child in node.children.values():
            if child.source is None:
                dirs.append((child, 0))
                order.append(child)
    fat = [0x0FFFFFF8, END]
    next_cluster = 2

    def allocate(nbytes: int) -> int:
        nonlocal next_cluster
        count = max(1, math.ceil(nbytes / cluster_bytes))
        first = next_cluster
        if first + count - 2 > clusters:
            raise FatError(f"the files need more than the {clusters * cluster_bytes} bytes "
                           "of this FAT32 volume: make the image larger")
        fat.extend(range(first + 1, first + count))
        fat.append(END)
        next_cluster += count
        return first

    for node, _ in dirs:  # sizes first: short names decide how many LFN entries a dir has
        node.size = len(_dir_bytes(node, 0, node is root, label_bytes))
        node.cluster = allocate(node.size)
    node_files = [n for d, _ in dirs for n in d.children.values() if n.source is not None]
    for node in node_files:
        node.cluster = allocate(node.size) if node.size else 0  # empty files own no cluster

    data_start = offset + (RESERVED + FATS * fat_sectors) * SECTOR

    def cluster_offset(cluster: int) -> int:
        return data_start + (cluster - 2) * cluster_bytes

    parents = {id(child): node for node, _ in dirs for child in node.children.values()}
    for node, _ in dirs:
        parent = parents.get(id(node))
        parent_cluster = 0 if parent is None or parent is root else parent.cluster
        data = _dir_bytes(node, parent_cluster, node is root, label_bytes)
        span = math.ceil(max(len(data), 1) / cluster_bytes) * cluster_bytes
        f.seek(cluster_offset(node.cluster))
        f.write(data.ljust(span, b"\x00"))
    for node in node_files:
        if node.source is None or not node.size:
            continue
        f.seek(cluster_offset(node.cluster))
        with open(node.source, "rb") as src:
            while chunk := src.read(1 << 20):
                f.write(chunk)

    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    for copy in range(FATS):
        f.seek(offset + (RESERVED + copy * fat_sectors) * SECTOR)
        f.write(fat_bytes)

    boot = bytearray(SECTOR)
    boot[0:3] = b"\xeb\x58\x90"
    boot[3:11] = b"PYBMFAT "
    struct.pack_into("<HBHBHHBHHHII", boot, 11, SECTOR, spc, RESERVED, FATS, 0, 0, 0xF8, 0,
                     32, 64, hidden_sectors, total_sectors)
    struct.pack_into("<IHHIHH", boot, 36, fat_sectors, 0, 0, 2, 1, 6)
    struct.pack_into("<BBBI11s8s", boot, 64, 0x80, 0, 0x29, volume_id, label_bytes,
                     b"FAT32   ")
    boot[510:512] = b"\x55\xaa"
    info = bytearray(SECTOR)
    free = clusters - (next_cluster - 2)
    struct.pack_into("<I", info, 0, 0x41615252)
    struct.pack_into("<III", info, 484, 0x61417272, free, next_cluster)
    struct.pack_into("<I", info, 508, 0xAA550000)
    for base in (0, 6):
        f.seek(offset + base * SECTOR)
        f.write(bytes(boot) + bytes(info))

"""pytest_baremetal.image: the GPT is parsed back independently, the FAT (written in pure
Python by fatfs) is read with mtools and checked with fsck.fat, and the files on it are
compared byte for byte with their sources."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

import pytest

from pytest_baremetal import image
from pytest_baremetal.image import ImageError, compose_image

needs_mtools = pytest.mark.skipif(
    shutil.which("mformat") is None or shutil.which("mtype") is None,
    reason="mtools is not installed (apt-get install mtools)",
)

ESP_GUID = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
SECTOR = 512


def crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def read_header(disk: bytes, lba: int) -> dict[str, int | bytes]:
    raw = disk[lba * SECTOR : lba * SECTOR + 92]
    fields = struct.unpack("<8sIIIIQQQQ16sQIII", raw)
    names = ["sig", "rev", "size", "crc", "reserved", "my", "alt", "first", "last", "guid",
             "array", "count", "entry_size", "array_crc"]
    header = dict(zip(names, fields, strict=True))
    zeroed = raw[:16] + b"\0\0\0\0" + raw[20:]
    assert crc(zeroed) == header["crc"], f"header CRC at LBA {lba}"
    return header


def check_gpt(path: Path) -> tuple[int, int]:
    """Checks every structure of the disk; returns the ESP's first and last LBA."""
    disk = path.read_bytes()
    assert len(disk) % SECTOR == 0
    total = len(disk) // SECTOR
    # Protective MBR.
    assert disk[510:512] == b"\x55\xaa"
    status, ptype, start, count = struct.unpack_from("<B3xB3xII", disk, 446)
    assert (status, ptype, start) == (0, 0xEE, 1)
    assert count == min(total - 1, 0xFFFFFFFF)
    assert disk[446 + 16 : 510] == bytes(64 - 16)  # the other three entries are empty
    # Primary and backup headers agree and point at each other.
    primary = read_header(disk, 1)
    backup = read_header(disk, total - 1)
    assert primary["sig"] == backup["sig"] == b"EFI PART"
    assert primary["rev"] == 0x00010000 and primary["size"] == 92
    assert (primary["my"], primary["alt"]) == (1, total - 1)
    assert (backup["my"], backup["alt"]) == (total - 1, 1)
    assert primary["guid"] == backup["guid"]
    assert primary["array"] == 2
    assert backup["array"] == total - 33
    for key in ("first", "last", "count", "entry_size", "array_crc"):
        assert primary[key] == backup[key], key
    assert primary["first"] == 34 and primary["last"] == total - 34
    count_, size = int(primary["count"]), int(primary["entry_size"])
    arrays = []
    for header in (primary, backup):
        offset = int(header["array"]) * SECTOR
        array = disk[offset : offset + count_ * size]
        assert crc(array) == header["array_crc"]
        arrays.append(array)
    assert arrays[0] == arrays[1]
    # One ESP entry at 1 MiB, the rest empty.
    ptype_guid, unique, first, last, attrs, name = struct.unpack_from("<16s16sQQQ72s", arrays[0])
    assert uuid.UUID(bytes_le=ptype_guid) == ESP_GUID
    assert unique != bytes(16)
    assert first == 2048
    assert primary["first"] <= first <= last <= primary["last"]
    assert attrs == 0
    assert name.decode("utf-16-le").rstrip("\0") == "EFI System Partition"
    assert arrays[0][size:] == bytes(len(arrays[0]) - size)
    return first, last


def mtools(*args: str) -> bytes:
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    return subprocess.run(list(args), env=env, check=True, capture_output=True).stdout


def esp(path: Path) -> str:
    return f"{path}@@{2048 * SECTOR}"


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "efi": tmp_path / "app.efi",
        "model.bin": tmp_path / "weights.bin",
        "tokenizer.bin": tmp_path / "tok.bin",
        "run.cfg": tmp_path / "run.cfg",
    }
    files["efi"].write_bytes(b"MZ" + os.urandom(70_000))
    files["model.bin"].write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    files["tokenizer.bin"].write_bytes(os.urandom(4483))
    files["run.cfg"].write_text('prompt="Once upon a time"\nsteps=8\n')
    return files


@needs_mtools
def test_compose_writes_valid_gpt_and_files(tmp_path: Path, inputs: dict[str, Path]) -> None:
    out = tmp_path / "out" / "disk.img"
    extra = {k: v for k, v in inputs.items() if k != "efi"}
    assert compose_image(out, inputs["efi"], extra) == out
    first, last = check_gpt(out)
    assert (last - first + 1) * SECTOR >= image.MIN_ESP_MIB * image.MIB
    listing = mtools("mdir", "-b", "-i", esp(out), "::/").decode()
    names = {line.rstrip("/").split("/")[-1].lower() for line in listing.split()}
    assert {"efi", "model.bin", "tokenizer.bin", "run.cfg"} <= names
    assert mtools("mtype", "-i", esp(out), "::/EFI/BOOT/BOOTX64.EFI") == inputs[
        "efi"
    ].read_bytes()
    for name, source in extra.items():
        assert mtools("mtype", "-i", esp(out), "::/" + name) == source.read_bytes(), name
    info = mtools("minfo", "-i", esp(out), "::").decode()
    assert "hidden sectors: 2048" in info
    assert not out.with_name("disk.img.tmp").exists()


@needs_mtools
def test_default_size_has_headroom(tmp_path: Path, inputs: dict[str, Path]) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(50 * image.MIB)  # sparse, but copied in full
    out = compose_image(tmp_path / "d.img", inputs["efi"], {"model.bin": big})
    size_mib = out.stat().st_size // image.MIB
    assert size_mib == image.default_size_mib(50 * image.MIB + 70_002)
    assert size_mib >= 50 * 1.1
    check_gpt(out)
    assert len(mtools("mtype", "-i", esp(out), "::/model.bin")) == 50 * image.MIB


@needs_mtools
def test_explicit_size_and_subdirectories(tmp_path: Path, inputs: dict[str, Path]) -> None:
    out = compose_image(tmp_path / "d.img", inputs["efi"],
                        {"models/tiny/model.bin": inputs["model.bin"]}, size_mib=64)
    assert out.stat().st_size == 64 * image.MIB
    check_gpt(out)
    data = mtools("mtype", "-i", esp(out), "::/models/tiny/model.bin")
    assert data == inputs["model.bin"].read_bytes()


def test_missing_file_is_named(tmp_path: Path, inputs: dict[str, Path]) -> None:
    missing = tmp_path / "nowhere" / "model.bin"
    with pytest.raises(ImageError, match=r"nowhere/model\.bin: no such file \(for model\.bin"):
        compose_image(tmp_path / "d.img", inputs["efi"], {"model.bin": missing})
    with pytest.raises(ImageError, match=r"missing\.efi: no such file \(for EFI/BOOT/BOOTX64"):
        compose_image(tmp_path / "d.img", tmp_path / "missing.efi", {})
    assert not (tmp_path / "d.img").exists()


@needs_mtools
def test_no_external_tool_is_needed(
    tmp_path: Path, inputs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an empty PATH (a Windows host with only Python): the disk is still made."""
    out = tmp_path / "d.img"
    with monkeypatch.context() as patched:
        patched.setenv("PATH", str(tmp_path / "empty"))
        compose_image(out, inputs["efi"], {"model.bin": inputs["model.bin"]})
    check_gpt(out)
    assert mtools("mtype", "-i", esp(out), "::/model.bin") == inputs["model.bin"].read_bytes()


def fsck(out: Path, tmp_path: Path) -> str:
    """fsck.fat -n on the ESP carved out of the disk (it reads whole devices only)."""
    first, last = check_gpt(out)
    part = tmp_path / "esp.part"
    with open(out, "rb") as src, open(part, "wb") as dst:
        src.seek(first * SECTOR)
        dst.write(src.read((last - first + 1) * SECTOR))
    result = subprocess.run(["fsck.fat", "-n", "-v", str(part)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.skipif(shutil.which("fsck.fat") is None, reason="dosfstools is not installed")
@needs_mtools
def test_long_names_and_deep_folders_pass_fsck(tmp_path: Path, inputs: dict[str, Path]) -> None:
    names = {
        "tokenizer.bin": inputs["tokenizer.bin"],  # lower case, base longer than 8
        "stories15M.bin": inputs["model.bin"],
        "Stories15M.cfg": inputs["run.cfg"],  # same basis: a second ~N short name
        "a folder/with a very long name indeed/Ünïcode file name.txt": inputs["run.cfg"],
        "EMPTY.TXT": tmp_path / "empty.txt",
        **{f"many/file-{i:03d}.dat": inputs["run.cfg"] for i in range(40)},  # a folder > 1 cluster
    }
    (tmp_path / "empty.txt").write_bytes(b"")
    out = compose_image(tmp_path / "d.img", inputs["efi"], names)
    report = fsck(out, tmp_path)
    assert "32 bit entries" in report and "hidden sectors" in report, report
    for name, source in names.items():
        assert mtools("mtype", "-i", esp(out), "::/" + name) == source.read_bytes(), name
    listing = mtools("mdir", "-i", esp(out), "::/").decode()
    assert "tokenizer.bin" in listing and "stories15M.bin" in listing, listing


@pytest.mark.skipif(shutil.which("fsck.fat") is None, reason="dosfstools is not installed")
@needs_mtools
def test_large_volume_uses_4k_clusters(tmp_path: Path, inputs: dict[str, Path]) -> None:
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(300 * image.MIB)
        f.seek(300 * image.MIB - 5)
        f.write(b"tail!")
    out = compose_image(tmp_path / "d.img", inputs["efi"], {"model.bin": big})
    report = fsck(out, tmp_path)
    assert "4096 bytes per cluster" in report, report
    data = mtools("mtype", "-i", esp(out), "::/model.bin")
    assert len(data) == 300 * image.MIB and data.endswith(b"tail!")


def test_bad_names_and_sizes(tmp_path: Path, inputs: dict[str, Path]) -> None:
    with pytest.raises(ImageError, match="given twice"):
        compose_image(tmp_path / "d.img", inputs["efi"],
                      {"run.cfg": inputs["run.cfg"], "RUN.CFG": inputs["run.cfg"]})
    with pytest.raises(ImageError, match="given twice"):
        compose_image(tmp_path / "d.img", inputs["efi"], {"efi/boot/bootx64.efi": inputs["efi"]})
    with pytest.raises(ImageError, match="bad file name"):
        compose_image(tmp_path / "d.img", inputs["efi"], {"../x": inputs["run.cfg"]})
    with pytest.raises(ImageError, match="too small"):
        compose_image(tmp_path / "d.img", inputs["efi"], {}, size_mib=8)
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(40 * image.MIB)
    with pytest.raises(ImageError, match="do not fit in a 36 MiB image"):
        compose_image(tmp_path / "d.img", inputs["efi"], {"model.bin": big}, size_mib=36)


@needs_mtools
def test_command_line(tmp_path: Path, inputs: dict[str, Path]) -> None:
    out = tmp_path / "cli.img"
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "pytest_baremetal.image", "--efi", str(inputs["efi"]),
         "--file", f"model.bin={inputs['model.bin']}", "--file", f"run.cfg={inputs['run.cfg']}",
         "-o", str(out)],
        env=dict(os.environ, PYTHONPATH=str(repo)), capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ESP at 1 MiB" in result.stdout
    check_gpt(out)
    assert mtools("mtype", "-i", esp(out), "::/run.cfg") == inputs["run.cfg"].read_bytes()

    bad = subprocess.run(
        [sys.executable, "-m", "pytest_baremetal.image", "--efi", str(tmp_path / "no.efi"),
         "-o", str(out)],
        env=dict(os.environ, PYTHONPATH=str(repo)), capture_output=True, text=True, check=False,
    )
    assert bad.returncode == 1
    assert "no.efi: no such file" in bad.stderr

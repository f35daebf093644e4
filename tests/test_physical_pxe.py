"""PXE staging into a board's TFTP root, the iPXE script, and the dnsmasq proxy-DHCP argv."""

from __future__ import annotations

from pathlib import Path

from pytest_baremetal.targets.physical.pxe import APP_NAME, dnsmasq_argv, ipxe_script, stage


def files(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    (tmp_path / "src").mkdir()
    efi = tmp_path / "src" / "BOOTX64.EFI"
    efi.write_bytes(b"MZ-efi")
    model = tmp_path / "src" / "model.bin"
    model.write_bytes(b"weights")
    cfg = tmp_path / "src" / "run.cfg"
    cfg.write_text("steps=8\n")
    return efi, {"model.bin": model, "run.cfg": cfg}


def test_stage_plain_bootfile_and_remove_stale_files(tmp_path: Path) -> None:
    efi, extra = files(tmp_path)
    root = tmp_path / "tftp"
    names = stage(root, "bootx64.efi", efi, extra)
    assert names == ["bootx64.efi", "model.bin", "run.cfg"]
    assert (root / "bootx64.efi").read_bytes() == b"MZ-efi"
    assert (root / "run.cfg").read_text() == "steps=8\n"
    (root / "lab-file").write_text("not ours")
    stage(root, "bootx64.efi", efi, {"model.bin": extra["model.bin"]})
    assert not (root / "run.cfg").exists()          # staged earlier, not wanted now
    assert (root / "lab-file").exists()             # never staged by us: left alone
    assert not [p for p in root.iterdir() if p.name.endswith(".part")]


def test_stage_ipxe_script_fetches_every_file_then_chains(tmp_path: Path) -> None:
    efi, extra = files(tmp_path)
    root = tmp_path / "tftp"
    stage(root, "boot.ipxe", efi, extra, ipxe=True)
    script = (root / "boot.ipxe").read_text().splitlines()
    assert script[0] == "#!ipxe"
    # relative to the script's URI: the server that gave it (not ${next-server}, which
    # behind proxy-DHCP is the lab's DHCP server)
    assert script[1:] == ["imgfetch model.bin", "imgfetch run.cfg", f"chain {APP_NAME}"]
    assert (root / APP_NAME).read_bytes() == b"MZ-efi"
    assert ipxe_script([]) == "#!ipxe\nchain app.efi\n"


def test_dnsmasq_is_proxy_dhcp_for_one_mac(tmp_path: Path) -> None:
    argv = dnsmasq_argv(tmp_path / "tftp", "bootx64.efi", "00:1b:21:aa:bb:cc",
                        "192.168.10.0", "enp3s0", tmp_path)
    assert "--dhcp-range=192.168.10.0,proxy" in argv      # never hands out addresses
    assert "--port=0" in argv                              # no DNS
    assert "--dhcp-mac=set:bmboard,00:1b:21:aa:bb:cc" in argv
    assert "--dhcp-ignore=tag:!bmboard" in argv            # other machines are ignored
    assert f"--tftp-root={tmp_path / 'tftp'}" in argv
    assert "--interface=enp3s0" in argv

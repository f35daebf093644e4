"""Shared fixtures of the plugin's own tests."""

from __future__ import annotations

from fixture_guest.fixtures import fixture_efi, fixture_image, process_gone, qemu_boot

__all__ = ["fixture_efi", "fixture_image", "process_gone", "qemu_boot"]

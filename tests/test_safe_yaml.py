"""Hostile YAML in board files, profiles and --bm-set values ends in a ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_baremetal import safe_yaml
from pytest_baremetal.boards import load_board, with_overrides
from pytest_baremetal.errors import ConfigError
from pytest_baremetal.markers.profile import load_profile

BOMB = "extra_args: [" + ", ".join(
    f"&a{i} [" + ",".join([f"*a{i - 1}" if i else "x"] * 9) + "]" for i in range(9)) + "]\n"


def test_alias_bomb_in_a_board_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("kind: qemu\naccel: tcg\ncpu: max\n" + BOMB)
    with pytest.raises(ConfigError, match=r"bomb\.yaml: line 4.*aliases .* not allowed"):
        load_board(path)


def test_self_referencing_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="aliases"):
        safe_yaml.loads("extra_args: &a [*a]\n", "b.yaml")


def test_alias_in_a_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nevents:\n  a: &x {pattern: 'x'}\n  b: *x\n")
    with pytest.raises(ConfigError, match=r"p\.yaml: line 3"):
        load_profile(path)


@pytest.mark.parametrize("loader", ["board", "profile"])
def test_non_utf8_names_the_file_and_offset(tmp_path: Path, loader: str) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"kind: qemu\ndescription: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin\.yaml: not UTF-8 text: byte 0xe9 at offset 27"):
        (load_board if loader == "board" else load_profile)(path)


@pytest.mark.parametrize("text", [".nan", ".inf", "-.inf"])
def test_non_finite_numbers_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "nan.yaml"
    path.write_text(f"kind: qemu\naccel: tcg\ncpu: max\ntimeouts: {{run: {text}}}\n")
    with pytest.raises(ConfigError, match=r"nan\.yaml: timeouts\.run: .* is not a finite number"):
        load_board(path)


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ConfigError, match="nested deeper"):
        safe_yaml.loads("a: " + "[" * 5000 + "]" * 5000, "deep.yaml")


def test_override_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text("kind: qemu\naccel: tcg\ncpu: max\n")
    with pytest.raises(ConfigError, match=r"--bm-set memory=&a \[\*a\]: .*aliases"):
        with_overrides(load_board(path), ["memory=&a [*a]"])


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# x\n" * (safe_yaml.MAX_FILE_BYTES // 4 + 10))
    with pytest.raises(ConfigError, match="larger than"):
        load_board(path)

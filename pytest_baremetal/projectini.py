"""The project's pytest ini file, found the way pytest finds it, for the command-line tools
(``pytest-baremetal boards`` honours ``bm_boards`` like a pytest run does)."""

from __future__ import annotations

import configparser
import sys
from pathlib import Path
from typing import Any

INI_NAMES = ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml",
             "tox.ini", "setup.cfg")


def _toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    with open(path, "rb") as f:
        return dict(tomllib.load(f))


def _section(path: Path) -> dict[str, Any] | None:
    """The pytest settings in ``path``, or None when it holds none."""
    if path.suffix == ".toml":
        data = _toml(path)
        if path.name == "pyproject.toml":
            tool = data.get("tool", {}).get("pytest", {})
            found = tool.get("ini_options") if "ini_options" in tool else None
            return dict(found) if isinstance(found, dict) else None
        found = data.get("pytest")
        return dict(found) if isinstance(found, dict) else {}
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    name = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if parser.has_section(name):
        return dict(parser.items(name))
    return {} if path.name in ("pytest.ini", ".pytest.ini") else None


def find(start: Path) -> tuple[Path | None, dict[str, Any]]:
    """The ini file pytest would use from ``start`` (searching upwards) and its settings."""
    for folder in (start, *start.parents):
        for name in INI_NAMES:
            path = folder / name
            if path.is_file():
                section = _section(path)
                if section is not None:
                    return path, section
    return None, {}


def board_dirs(start: Path, extra: list[str]) -> list[Path]:
    """Board folders as a pytest run from ``start`` sees them (see settings.from_config)."""
    from pytest_baremetal import resources

    inipath, section = find(start)
    project = inipath.parent if inipath else start
    dirs = [Path(d).expanduser() for d in extra]
    dirs = [d if d.is_absolute() else start / d for d in dirs]
    value = section.get("bm_boards", [])
    items = value.split() if isinstance(value, str) else [str(v) for v in value]
    for item in items:
        path = Path(item).expanduser()
        dirs.append(path if path.is_absolute() else project / path)
    dirs.append(project / "boards")
    packaged = resources.packaged_boards()
    if packaged is not None:
        dirs.append(packaged)
    return dirs

"""Every third-party module the plugin imports is declared in pyproject.toml (as a dependency
or in the extra that needs it), and plain pyserial is never declared beside labgrid."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
# module -> the distribution that provides it
PROVIDERS = {
    "_pytest": "pytest", "pytest": "pytest", "yaml": "PyYAML", "numpy": "numpy",
    "regex": "regex", "tomli": "tomli", "serial": "pyserial-labgrid", "labgrid": "labgrid",
    "pyudev": "pyudev", "allure": "allure-pytest", "allure_commons": "allure-pytest",
    "psycopg": "psycopg", "matplotlib": "matplotlib",
}


def imported_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "pytest_baremetal").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "pytest_baremetal"}


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower() for spec in specs}


def test_every_imported_module_is_declared() -> None:
    modules = imported_modules()
    unknown = modules - PROVIDERS.keys()
    assert not unknown, f"add these imports to PROVIDERS and pyproject.toml: {unknown}"
    missing = {PROVIDERS[m].lower() for m in modules} - declared()
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_plain_pyserial_is_never_declared() -> None:
    # labgrid depends on pyserial-labgrid, which installs the same `serial` module.
    assert "pyserial" not in declared()

"""What a test reads from a build, and whether a profile gives it.

A test states it with markers: ``bm_needs_events("boot", cpu=["avx2", "fma"])`` (event
kinds, and per kind the fields read), ``bm_interaction("repl")`` or ``("script")`` (a test
that drives a prompt, or one that needs the run to end by itself) and ``bm_config(...)``
(configuration keys the build must take). The same rules serve the skip at collection
(:mod:`pytest_baremetal.selection`), ``profile check`` and the README table, which read
suite files without importing them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_baremetal.markers.profile import Profile


class _Mark(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def args(self) -> tuple[Any, ...]: ...
    @property
    def kwargs(self) -> Mapping[str, Any]: ...


@dataclass
class Needs:
    """One test's requirements on the build under test."""

    events: dict[str, list[str]] = field(default_factory=dict)
    interaction: str | None = None
    config_keys: list[str] = field(default_factory=list)

    def add_event(self, kind: str, fields: Iterable[str] = ()) -> None:
        have = self.events.setdefault(kind, [])
        have.extend(f for f in fields if f not in have)

    def merge(self, other: Needs) -> Needs:
        out = Needs({k: list(v) for k, v in self.events.items()}, self.interaction,
                    list(self.config_keys))
        for kind, names in other.events.items():
            out.add_event(kind, names)
        out.interaction = other.interaction or out.interaction
        out.config_keys += [k for k in other.config_keys if k not in out.config_keys]
        return out

    def skip_reason(self, profile: Profile, config: Mapping[str, object] | None = None
                    ) -> str | None:
        """Why the build this profile describes cannot run the test, or None."""
        missing = [kind for kind in self.events if not profile.provides(kind)]
        if missing:
            return f"the marker profile {profile.name!r} has no event {', '.join(missing)}"
        for kind, names in self.events.items():
            lacking = [n for n in names if not profile.provides_field(kind, n)]
            if lacking:
                return (f"the marker profile {profile.name!r}: event {kind} has no field "
                        f"{', '.join(lacking)} (declare it under fields, or set it with "
                        "rename, constants or defaults)")
        interaction = profile.interaction
        if self.interaction == "script" and interaction.is_repl(config or {}):
            return ("the build is interactive (repl): it waits at its prompt and does not end "
                    "its run by itself")
        if self.interaction == "repl" and not (interaction.mode == "repl"
                                               or interaction.repl_when):
            return (f"the marker profile {profile.name!r} describes no interactive mode "
                    "(interaction.mode: repl, or interaction.repl_when)")
        unknown = [k for k in self.config_keys if k not in profile.config_keys]
        if unknown and profile.config_keys:
            return (f"the build takes no configuration key {', '.join(unknown)} (profile "
                    f"{profile.name!r}, config.keys)")
        return None

    def describe(self) -> str:
        parts = [kind + (f" ({', '.join(names)})" if names else "")
                 for kind, names in self.events.items()]
        return "; ".join(parts) or "-"


def needs_of_marks(marks: Iterable[_Mark]) -> Needs:
    """The needs stated by pytest marks (closest first or last: they are all merged)."""
    needs = Needs()
    for mark in marks:
        _apply(needs, mark.name, list(mark.args), dict(mark.kwargs))
    return needs


def _apply(needs: Needs, name: str, args: list[Any], kwargs: dict[str, Any]) -> None:
    if name == "bm_needs_events":
        for kind in args:
            needs.add_event(str(kind))
        for kind, names in kwargs.items():
            names = [names] if isinstance(names, str) else list(names)
            needs.add_event(kind, [str(n) for n in names])
    elif name == "bm_interaction" and args:
        needs.interaction = str(args[0])
    elif name == "bm_config":
        needs.config_keys += [k for k in kwargs if k not in needs.config_keys]


# -- reading suite files without importing them ---------------------------------------------

@dataclass(frozen=True)
class SuiteTest:
    suite: str  # file name, e.g. test_boot.py
    name: str  # function name
    needs: Needs


def read_suites(folder: Path) -> list[SuiteTest]:
    """Every test function of ``folder/test_*.py`` with the needs its markers state."""
    tests: list[SuiteTest] = []
    for path in sorted(folder.glob("test_*.py")):
        tests.extend(read_suite(path))
    return tests


def read_suite(path: Path) -> list[SuiteTest]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name)}
    module = Needs()
    if "pytestmark" in constants:
        value = constants["pytestmark"]
        calls = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
        for call in calls:
            _apply_call(module, call, constants)
    tests: list[SuiteTest] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            own = Needs()
            for decorator in node.decorator_list:
                _apply_call(own, decorator, constants)
            tests.append(SuiteTest(path.name, node.name, module.merge(own)))
    return tests


def _apply_call(needs: Needs, node: ast.expr, constants: Mapping[str, ast.expr]) -> None:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return
    name = node.func.attr
    if not name.startswith("bm_"):
        return
    args = [_literal(a, constants) for a in node.args]
    kwargs: dict[str, Any] = {}
    for kw in node.keywords:
        value = _literal(kw.value, constants)
        if kw.arg is None and isinstance(value, dict):
            kwargs.update(value)  # bm_config(**SAMPLED)
        elif kw.arg is not None:
            kwargs[kw.arg] = value
    _apply(needs, name, args, kwargs)


def _literal(node: ast.expr, constants: Mapping[str, ast.expr]) -> Any:
    if isinstance(node, ast.Name) and node.id in constants:
        node = constants[node.id]
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def markdown_table(folder: Path) -> str:
    """The README table: each suite test and the events and fields it reads."""
    rows = ["| suite | test | events (fields) it reads | needs |", "|---|---|---|---|"]
    for test in read_suites(folder):
        extra = []
        if test.needs.interaction:
            extra.append(f"interaction: {test.needs.interaction}")
        if test.needs.config_keys:
            extra.append("config: " + ", ".join(test.needs.config_keys))
        rows.append(f"| {test.suite} | {test.name} | {test.needs.describe()} | "
                    f"{'; '.join(extra) or '-'} |")
    return "\n".join(rows) + "\n"

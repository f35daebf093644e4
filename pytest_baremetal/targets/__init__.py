"""Targets: the registry of board kinds, and the protocols a kind implements.

A board kind is one module with a :class:`BoardKind` object: it owns some top-level keys of
a board file, parses them once into a typed spec, and makes the :class:`Target` that boots
boards of that kind. The built-in kinds are ``qemu`` and ``physical``; another package adds
one with an entry point in the group ``pytest_baremetal.targets``::

    [project.entry-points."pytest_baremetal.targets"]
    toy = "my_package.toy:KIND"

or, from a conftest, ``pytest_baremetal.targets.register(KIND)``. Nothing outside this
module dispatches on a kind's name.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pytest_baremetal.errors import ConfigError

if TYPE_CHECKING:
    from pytest_baremetal.boards import Board
    from pytest_baremetal.build_under_test import BuildUnderTest
    from pytest_baremetal.bus import EventBus
    from pytest_baremetal.dut import Dut
    from pytest_baremetal.guestconfig import GuestConfig
    from pytest_baremetal.markers import Profile
    from pytest_baremetal.validate import Where

ENTRY_POINT_GROUP = "pytest_baremetal.targets"
S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)


@dataclass(frozen=True)
class TargetOptions:
    """Run-wide choices a target honours."""

    allow_fallback: bool = True


@dataclass(frozen=True)
class BootRequest:
    """One boot: this build, as this disk image, with this guest configuration."""

    config: GuestConfig
    image: Path
    log_dir: Path
    profile: Profile
    build: BuildUnderTest
    bus: EventBus


class Target(Protocol):
    """One board's way to power on, reach the console and describe itself."""

    def boot(self, request: BootRequest) -> Dut:
        """Powers the board on with the request's image; the running Dut, or an error."""
        ...

    def describe(self) -> str:
        """One line for listings: accelerator, CPU, memory; or the lab wiring."""
        ...

    def facts(self) -> dict[str, str]:
        """What a report's environment block shows about this target (versions, firmware)."""
        ...

    def close(self) -> None: ...


class BoardKind(Protocol[S]):
    """A kind of board: its board-file keys, its spec parser and its target."""

    @property
    def name(self) -> str: ...

    @property
    def keys(self) -> tuple[str, ...]:
        """The top-level board-file keys this kind owns (beside the common ones)."""
        ...

    @property
    def required(self) -> tuple[str, ...]: ...

    def parse(self, data: Mapping[str, Any], where: Where, board_name: str) -> S:
        """The kind's own keys of a board file -> its typed spec (raises ConfigError)."""
        ...

    def source(self, spec: S) -> dict[str, Any]:
        """The board-file keys that give back ``spec`` (for ``--bm-set`` on code-made boards)."""
        ...

    def summary(self, spec: S) -> str:
        """One line for ``pytest-baremetal boards``."""
        ...

    def unreachable(self, board: Board[S]) -> str | None:
        """Why this board cannot be used from here (a skip reason), or None."""
        ...

    def target(self, board: Board[S], options: TargetOptions) -> Target: ...


_BUILTIN = {
    "qemu": "pytest_baremetal.targets.qemu.kind:KIND",
    "physical": "pytest_baremetal.targets.physical.kind:KIND",
}
_kinds: dict[str, BoardKind[Any]] = {}


def register(kind: BoardKind[Any]) -> BoardKind[Any]:
    """Adds (or replaces) a board kind; returns it, so a module can end with it."""
    _kinds[kind.name] = kind
    return kind


def _load(spec: str, origin: str) -> BoardKind[Any]:
    module, _, attr = spec.partition(":")
    try:
        found: BoardKind[Any] = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"board kind from {origin} ({spec}) cannot be loaded: {error}") \
            from error
    return found


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def names() -> tuple[str, ...]:
    """Every kind a board file may name: built in, registered, or installed."""
    others = sorted({*_kinds, *_entry_points()} - set(_BUILTIN))
    return (*_BUILTIN, *others)


def get(name: str) -> BoardKind[Any] | None:
    """The kind called ``name``, loading it on first use; None if there is none."""
    if name in _kinds:
        return _kinds[name]
    if name in _BUILTIN:
        return register(_load(_BUILTIN[name], "pytest-baremetal"))
    entry = _entry_points().get(name)
    if entry is None:
        return None
    return register(_load(entry.value, f"entry point {entry.name} of {ENTRY_POINT_GROUP}"))


def kind_of(board: Board[Any]) -> BoardKind[Any]:
    kind = get(board.kind)
    if kind is None:
        raise ConfigError(str(board.path or board.name), "kind",
                          f"no board kind {board.kind!r} is installed", allowed=names())
    return kind


def target_for(board: Board[Any], options: TargetOptions) -> Target:
    """The target that boots ``board`` (made by its kind)."""
    return kind_of(board).target(board, options)


def summary(board: Board[Any]) -> str:
    """The board's one-line description for listings."""
    return kind_of(board).summary(board.spec)


def unreachable(board: Board[Any]) -> str | None:
    """Why ``board`` cannot be used from here (its kind decides), or None."""
    return kind_of(board).unreachable(board)

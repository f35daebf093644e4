"""Which tests run where: guest configuration from markers, skips for board features and
profile events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_baremetal.session import BaremetalSession


def config_from_markers(node: pytest.Item | Any) -> dict[str, Any]:
    """Merges every `bm_config` marker, the closest (function) winning."""
    values: dict[str, Any] = {}
    for marker in reversed(list(node.iter_markers("bm_config"))):
        if marker.args:
            raise pytest.UsageError(f"{node.nodeid}: bm_config takes keyword arguments only, "
                                    f"e.g. @pytest.mark.bm_config(steps=16)")
        values.update(marker.kwargs)
    return values


def _marker_args(item: pytest.Item, name: str) -> list[str]:
    return [str(arg) for marker in item.iter_markers(name) for arg in marker.args]


def skip_reason(item: pytest.Item, session: BaremetalSession) -> str | None:
    """Why this test cannot run on its board with this build, or None."""
    needs = _marker_args(item, "bm_needs_events")
    missing = [kind for kind in needs if not session.profile.provides(kind)]
    if missing:
        return (f"the marker profile {session.profile.name!r} has no event "
                f"{', '.join(missing)}")
    if item.get_closest_marker("bm_reference_model") and not session.is_reference_guest:
        return "needs the reference guest's shipped model (not --bm-efi/--bm-image)"
    if item.get_closest_marker("bm_config") and not (
        session.is_reference_guest or session.build.takes_config
    ):
        return "the build under test takes no configuration file (profile config_file)"
    callspec = getattr(item, "callspec", None)
    board_name = callspec.params.get("board") if callspec else None
    if board_name is None:
        return None
    board = session.board(board_name)
    lab_reason = _lab_unreachable(board)
    if lab_reason:
        return lab_reason
    required = _marker_args(item, "bm_requires")
    lacking = [f for f in required if f not in board.features]
    if lacking:
        return f"board {board.name} lacks feature {', '.join(lacking)}"
    excluded = [f for f in _marker_args(item, "bm_lacks") if f in board.features]
    if excluded:
        return f"board {board.name} has feature {', '.join(excluded)} (test is for boards without)"
    return None


def _lab_unreachable(board: Any) -> str | None:
    """A board whose console or power lives behind a labgrid place needs a coordinator."""
    physical = board.physical or {}
    if board.kind != "physical" or not physical.get("place"):
        return None
    console = physical.get("console") or {}
    power = physical.get("power") or {}
    lcus = power.get("lcus") if isinstance(power, dict) else None
    remote = (isinstance(console, dict) and "remote" in console) or (
        isinstance(lcus, dict) and "remote" in lcus)
    if not remote:
        return None
    from pytest_baremetal.physical.lab import coordinator_address

    if coordinator_address():
        return None
    return (f"board {board.name} is reached through labgrid place {physical['place']!r}: "
            "pass --lg-coordinator HOST:PORT (or set LG_COORDINATOR)")

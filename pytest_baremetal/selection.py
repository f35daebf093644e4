"""Which tests run where: guest configuration from markers, skips for board features and
profile events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_baremetal import targets
from pytest_baremetal.markers.needs import needs_of_marks
from pytest_baremetal.markers.profile import Profile

if TYPE_CHECKING:
    from pytest_baremetal.session import BaremetalSession


def config_from_markers(node: pytest.Item | Any, profile: Profile | None = None
                        ) -> dict[str, Any]:
    """Merges every `bm_config` marker, the closest (function) winning.

    With the profile: `bm_prefer` values (speed knobs) are added for the keys the build
    takes, and a test marked `bm_interaction("repl")` gets the configuration that makes the
    build interactive (profile `interaction.repl_when`)."""
    values: dict[str, Any] = {}
    if profile is not None:
        accepted = set(profile.config_keys)
        for marker in reversed(list(node.iter_markers("bm_prefer"))):
            values.update({k: v for k, v in marker.kwargs.items() if k in accepted})
        mark = node.get_closest_marker("bm_interaction")
        if mark is not None and mark.args and mark.args[0] == "repl":
            values.update(profile.interaction.repl_when)
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
    profile = session.profile
    config = {**config_from_markers(item, profile), **dict(session.settings.guest_settings)}
    reason = needs_of_marks(item.iter_markers()).skip_reason(profile, config)
    if reason:
        return reason
    if item.get_closest_marker("bm_reference_model") and not session.is_reference_guest:
        return "needs the reference guest's shipped model (not --bm-efi/--bm-image)"
    if item.get_closest_marker("bm_config") and not (
        session.is_reference_guest or session.build.takes_config
    ):
        return "the build under test takes no configuration file (profile config_file)"
    params = item.callspec.params if isinstance(item, pytest.Function) and hasattr(
        item, "callspec") else {}
    board_name = params.get("board")
    if not isinstance(board_name, str):
        return None
    board = session.board(board_name)
    lab_reason = targets.unreachable(board)
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

"""The ``physical`` board kind: a ``physical:`` section (console, power, boot) in the file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_baremetal.errors import ConfigError
from pytest_baremetal.targets.physical import schema
from pytest_baremetal.targets.physical.schema import PhysicalSpec

if TYPE_CHECKING:
    from pytest_baremetal.boards import Board
    from pytest_baremetal.targets import Target, TargetOptions
    from pytest_baremetal.validate import Where


class PhysicalKind:
    name = "physical"
    keys = ("physical",)
    required = ("physical",)

    def parse(self, data: Mapping[str, Any], where: Where, board_name: str) -> PhysicalSpec:
        return schema.parse(data["physical"], where.place, where.base, board_name)

    def source(self, spec: PhysicalSpec) -> dict[str, Any]:
        raise ConfigError(spec.where or "physical board", "physical",
                          "--bm-set needs a physical board read from its file")

    def summary(self, spec: PhysicalSpec) -> str:
        return (f"physical ({spec.power.kind} power, {spec.boot.kind} boot, console "
                f"{spec.console.port.describe()})")

    def unreachable(self, board: Board[PhysicalSpec]) -> str | None:
        """A board whose ports are resources of a labgrid place needs a coordinator."""
        spec = board.spec
        if spec.place is None or not spec.remote_ports:
            return None
        from pytest_baremetal.targets.physical.lab import coordinator_address

        if coordinator_address():
            return None
        return (f"board {board.name} is reached through labgrid place {spec.place!r}: "
                "pass --lg-coordinator HOST:PORT (or set LG_COORDINATOR)")

    def target(self, board: Board[PhysicalSpec], options: TargetOptions) -> Target:
        try:
            from pytest_baremetal.targets.physical.target import PhysicalTarget
        except ImportError as error:  # pyserial-labgrid / labgrid missing, or not Linux
            raise ConfigError(f"{board.path}: physical boards need the lab extra (Linux "
                              f"only): pip install 'pytest-baremetal[lab]' ({error})") from error
        return PhysicalTarget(board, options)


KIND = PhysicalKind()

"""The ``qemu`` board kind: flat keys (accel, cpu, memory...) in the board file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pytest_baremetal.targets.qemu import spec as qemu_spec
from pytest_baremetal.targets.qemu.spec import QemuSpec

if TYPE_CHECKING:
    from pytest_baremetal.boards import Board
    from pytest_baremetal.targets import Target, TargetOptions
    from pytest_baremetal.validate import Where


class QemuKind:
    name = "qemu"
    keys = qemu_spec.KEYS
    required = ("accel", "cpu")

    def parse(self, data: Mapping[str, Any], where: Where, board_name: str) -> QemuSpec:
        return qemu_spec.parse(data, where, board_name)

    def source(self, spec: QemuSpec) -> dict[str, Any]:
        return qemu_spec.source(spec)

    def summary(self, spec: QemuSpec) -> str:
        return qemu_spec.summary(spec)

    def unreachable(self, board: Board[QemuSpec]) -> str | None:
        return None

    def target(self, board: Board[QemuSpec], options: TargetOptions) -> Target:
        from pytest_baremetal.targets.qemu.target import QemuTarget

        return QemuTarget(board, options)


KIND = QemuKind()

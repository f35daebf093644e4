"""An HTTP file server for guests that download over the network, with injected faults.

``FileServer(folder)`` serves one folder on 127.0.0.1 (a free port); ``guest_url(name)``
is the address the guest uses (QEMU user networking: 10.0.2.2). Faults (``status``,
``close_at``, ``stall``, ``lie_length``, ``flip_byte``, ``rate_limit``) are set per test.
"""

from pytest_baremetal.netserve.faults import (
    CloseAt,
    Fault,
    FlipByte,
    LieLength,
    RateLimit,
    Stall,
    Status,
    close_at,
    flip_byte,
    lie_length,
    rate_limit,
    stall,
    status,
)
from pytest_baremetal.netserve.log import RequestLog, RequestRecord
from pytest_baremetal.netserve.server import QEMU_USER_HOST, FileServer

__all__ = [
    "QEMU_USER_HOST",
    "CloseAt",
    "Fault",
    "FileServer",
    "FlipByte",
    "LieLength",
    "RateLimit",
    "RequestLog",
    "RequestRecord",
    "Stall",
    "Status",
    "close_at",
    "flip_byte",
    "lie_length",
    "rate_limit",
    "stall",
    "status",
]

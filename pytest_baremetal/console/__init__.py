"""Guest consoles: transports, cleaning, logs, and the Console that tests wait on."""

from pytest_baremetal.console.clean import Cleaner, clean
from pytest_baremetal.console.console import Console, Line
from pytest_baremetal.console.log import ConsoleLog, read_raw, read_records
from pytest_baremetal.console.transport import BytesTransport, SocketTransport, Transport

__all__ = [
    "BytesTransport",
    "Cleaner",
    "Console",
    "ConsoleLog",
    "Line",
    "SocketTransport",
    "Transport",
    "clean",
    "read_raw",
    "read_records",
]

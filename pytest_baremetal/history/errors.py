"""The history package's error type."""

from __future__ import annotations

from pytest_baremetal.errors import LAB, BaremetalError


class HistoryError(BaremetalError):
    """A history store that cannot be opened, read or written; the message says which."""

    category = LAB

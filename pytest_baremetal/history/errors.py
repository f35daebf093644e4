"""The history package's error type."""

from __future__ import annotations


class HistoryError(Exception):
    """A history store that cannot be opened, read or written; the message says which."""

"""pytest hooks and fixtures (being written; see docs/internals.md)."""

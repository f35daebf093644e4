"""Request path -> a file under the served root, refusing anything that leaves it."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Refused(ValueError):
    """The path points outside the root (answered 403)."""


def request_name(target: str) -> str:
    """The decoded path of a request target, without query, fragment or leading slash.

    Raises Refused for traversal (``..`` segments, also percent-encoded), absolute or
    drive paths, backslashes and NUL bytes.
    """
    path = urlsplit(target).path
    if not path.startswith("/"):
        raise Refused(f"request target {target!r} is not an absolute path")
    decoded = unquote(path, errors="strict")
    if "\0" in decoded or "\\" in decoded:
        raise Refused(f"request path {target!r} contains NUL or a backslash")
    name = decoded[1:]
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise Refused(f"request path {target!r} is absolute")
    if any(part == ".." for part in name.split("/")):
        raise Refused(f"request path {target!r} leaves the served folder")
    return name


def resolve(root: Path, name: str) -> Path:
    """The real file for ``name`` under ``root``; Refused when a symlink leads outside."""
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(real_root / name))
    if real != real_root and real_root not in real.parents:
        raise Refused(f"{name!r} resolves outside the served folder")
    return real

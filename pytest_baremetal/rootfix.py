"""Undo pytest's rootdir guess when it took one of this plugin's option values for a path.

pytest finds its rootdir and ini file before any plugin is loaded, so in
``pytest --bm-boards ../boards`` it takes ``../boards`` for a test path: the rootdir moves
up, the project's ini file (its ``testpaths``, ``addopts``) is lost and other tests are
collected. Once the plugin's options are known the same decision is made again with the
real free arguments and, when it differs, the config is pointed at the right ini file.
This touches private attributes of ``pytest.Config``; on a pytest where they differ the
repair is skipped with a warning (``--bm-boards=DIR`` never needs it).
"""

from __future__ import annotations

import copy
import inspect
import warnings
from pathlib import Path
from typing import Any

import pytest


def _determine(config: pytest.Config, ns: Any) -> tuple[Path, Path | None, Any, Any]:
    from _pytest.config.findpaths import determine_setup

    wanted = {
        "inifile": ns.inifilename,
        "override_ini": getattr(ns, "override_ini", None),
        "args": list(ns.file_or_dir),
        "rootdir_cmd_arg": ns.rootdir or None,
        "invocation_dir": Path(config.invocation_params.dir),
    }
    accepted = inspect.signature(determine_setup).parameters
    found = determine_setup(**{k: v for k, v in wanted.items() if k in accepted})
    ignored = found[3] if len(found) > 3 else None
    return found[0], found[1], found[2], ignored


def repair(config: pytest.Config, parser: pytest.Parser, args: list[str]) -> bool:
    """Re-decide rootdir and ini file from ``args``; True when they had to change."""
    if getattr(config.known_args_namespace, "rootdir", None):
        return False  # --rootdir given: the user decided
    try:
        ns = parser.parse_known_args(_without_target(parser, args))
        rootpath, inipath, inicfg, ignored = _determine(config, ns)
        if rootpath == config.rootpath and inipath == config.inipath:
            return False
        old_addopts = [str(a) for a in config.getini("addopts")]
        config._rootpath = rootpath
        config._inipath = inipath
        setattr(config, "_inicfg" if hasattr(config, "_inicfg") else "inicfg", inicfg)
        if ignored is not None and hasattr(config, "_ignored_config_files"):
            setattr(config, "_ignored_config_files", ignored)  # noqa: B010
        config._inicache.clear()
        parser.extra_info["rootdir"] = str(rootpath)
        parser.extra_info["inifile"] = str(inipath)
        new_addopts = [str(a) for a in config.getini("addopts")]
        if old_addopts != new_addopts and args[: len(old_addopts)] == old_addopts:
            args[: len(old_addopts)] = new_addopts
        derived_confcutdir = ns.confcutdir is None
        config.known_args_namespace = parser.parse_known_args(
            args, namespace=copy.copy(config.option))
        if derived_confcutdir:
            config.known_args_namespace.confcutdir = str(
                inipath.parent if inipath is not None else rootpath)
        return True
    except (AttributeError, ImportError, TypeError) as error:  # a pytest we do not know
        warnings.warn(f"pytest-baremetal: could not re-check pytest's rootdir ({error}); "
                      "write --bm-boards=DIR with '=' so pytest does not take DIR for a "
                      "test path", stacklevel=2)
        return False


def _without_target(parser: pytest.Parser, args: list[str]) -> list[str]:
    """``--target X`` before ``--target`` is registered: X is a board name, not a path."""
    known = any("--target" in o.names() for g in [*parser._groups, parser._anonymous]
                for o in g.options)
    if known:
        return args
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--target":
            skip = True
        else:
            out.append(arg)
    return out

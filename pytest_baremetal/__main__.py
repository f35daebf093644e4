"""`pytest-baremetal` (or `python -m pytest_baremetal`): doctor | boards | init | demo | image |
history | bisect | profile."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_baremetal.errors import BaremetalError


def _board_dirs(extra: list[str]) -> list[Path]:
    from pytest_baremetal.projectini import board_dirs

    return board_dirs(Path.cwd(), extra)


def _file(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {spec!r}")
    return name, Path(path)


def _demo(target: str, rest: list[str]) -> int:
    """The bundled suites against the reference guest, logs under ./reports."""
    import pytest

    from pytest_baremetal import resources

    suites = resources.bundled_suites()
    if suites is None:
        print("error: this installation carries no suites", file=sys.stderr)
        return 2
    if (suites / "__init__.py").is_file():  # installed: the suites are a package
        args = ["--pyargs", "pytest_baremetal.suites"]
    else:  # a checkout: its own suites/ with its own configuration
        args = [str(suites), f"--rootdir={suites.parent}"]
    return int(pytest.main([*args, f"--bm-target={target}", "-rs", *rest]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_baremetal",
                                     description="pytest-baremetal tools")
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="check this host and say how to fix what is missing")
    doctor.add_argument("--quick", action="store_true",
                        help="skip booting each accelerator")
    boards = sub.add_parser("boards", help="list the boards")
    boards.add_argument("--bm-boards", action="append", default=[], metavar="DIR")
    init = sub.add_parser("init", help="write a starter pytest.ini, marker profile and test "
                          "for your own build into a folder")
    init.add_argument("folder", nargs="?", default=".", type=Path)
    init.add_argument("--efi", type=Path, help="your EFI application")
    init.add_argument("--file", type=_file, action="append", default=[], metavar="NAME=PATH",
                      help="a file the build reads from its EFI partition (repeatable)")
    init.add_argument("--name", default="my-build", help="the profile's name")
    init.add_argument("--banner", help="regex of your build's first line (the boot event)")
    init.add_argument("--target", default="qemu-tcg", help="default board")
    init.add_argument("--boards", action="store_true",
                      help="copy the packaged QEMU boards into boards/ to edit them")
    demo = sub.add_parser("demo", help="boot the reference guest and run the bundled suites "
                          "(extra arguments go to pytest)")
    demo.add_argument("--target", default="qemu-tcg")
    sub.add_parser("image", help="compose a bootable GPT/FAT disk image", add_help=False)
    sub.add_parser("history", help="show the tok/s history of a board, or its change "
                   "points (--changes)", add_help=False)
    sub.add_parser("bisect", help="find the first slow commit with git bisect run",
                   add_help=False)
    sub.add_parser("profile", help="check a marker profile against a captured console log",
                   add_help=False)
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in ("demo", "image", "history", "profile", "bisect"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "doctor":
            from pytest_baremetal.doctor import run_doctor
            return run_doctor(sys.stdout, boot_accelerators=not args.quick)
        if args.command == "boards":
            from pytest_baremetal.doctor import list_boards
            return list_boards(_board_dirs(args.bm_boards), sys.stdout)
        if args.command == "init":
            from pytest_baremetal.scaffold import InitRequest, write_project

            write_project(InitRequest(folder=args.folder, efi=args.efi,
                                      files=tuple(args.file), name=args.name,
                                      banner=args.banner, target=args.target,
                                      boards=args.boards), sys.stdout)
            return 0
        if args.command == "demo":
            return _demo(args.target, rest)
        if args.command == "image":
            from pytest_baremetal.image import main as image_main
            return image_main(rest)
        if args.command == "profile":
            from pytest_baremetal.markers.check import main as profile_main
            return profile_main(rest)
        if args.command == "history":
            from pytest_baremetal.history.cli import main as history_main
            return history_main(rest)
        if args.command == "bisect":
            from pytest_baremetal.bisect import main as bisect_main
            return bisect_main(rest)
    except BaremetalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())

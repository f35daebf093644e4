"""`python -m pytest_baremetal doctor | boards | image | history`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_baremetal.errors import BaremetalError


def _board_dirs(extra: list[str]) -> list[Path]:
    return [Path(d) for d in extra] + [Path.cwd() / "boards"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_baremetal",
                                     description="pytest-baremetal tools")
    sub = parser.add_subparsers(dest="command", required=True)
    doctor = sub.add_parser("doctor", help="check this host and say how to fix what is missing")
    doctor.add_argument("--quick", action="store_true",
                        help="skip booting each accelerator")
    boards = sub.add_parser("boards", help="list the boards")
    boards.add_argument("--bm-boards", action="append", default=[], metavar="DIR")
    sub.add_parser("image", help="compose a bootable GPT/FAT disk image", add_help=False)
    sub.add_parser("history", help="show the tok/s history of a board", add_help=False)
    args, rest = parser.parse_known_args(argv)
    try:
        if args.command == "doctor":
            from pytest_baremetal.doctor import run_doctor
            return run_doctor(sys.stdout, boot_accelerators=not args.quick)
        if args.command == "boards":
            from pytest_baremetal.doctor import list_boards
            return list_boards(_board_dirs(args.bm_boards), sys.stdout)
        if args.command == "image":
            from pytest_baremetal.image import main as image_main
            return image_main(rest)
        if args.command == "history":
            from pytest_baremetal.history.cli import main as history_main
            return history_main(rest)
    except BaremetalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())

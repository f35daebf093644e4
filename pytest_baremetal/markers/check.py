"""``pytest-baremetal profile check PROFILE LOG``: replay a captured console through a profile.

Shows, with no boot and in seconds, what a run of the suites would see: the events with
their fields, the generations, death strings, whether the run is over (``done``, or idle at
the prompt), and which suite tests would run or skip and why. The log is a raw
``<name>.console.log`` written by the plugin (timestamped records) or any plain capture
(``script``, ``screen -L``, a serial terminal's log).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pytest_baremetal.console.console import Console
from pytest_baremetal.console.log import read_raw
from pytest_baremetal.console.transport import BytesTransport
from pytest_baremetal.errors import BaremetalError, ConfigError
from pytest_baremetal.markers.events import Event, Generation, generations
from pytest_baremetal.markers.needs import read_suites
from pytest_baremetal.markers.profile import PROMPT, Profile, resolve_profile


@dataclass
class Replay:
    """What a console recording means under a profile."""

    events: list[Event]
    generations: list[Generation]
    lines: int
    partial: str
    deaths: list[str]
    idle_prompt: Event | None
    seconds: float


def read_log(path: Path) -> bytes:
    """The bytes of a raw plugin log (timestamped records) or of a plain capture."""
    try:
        return read_raw(path)
    except ValueError:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(path, "", f"cannot read the log: {error.strerror or error}"
                          ) from error


def replay(profile: Profile, data: bytes) -> Replay:
    """Feed ``data`` through a Console with ``profile``, exactly as a boot would."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bm-profile-check-") as folder:
        console = Console(BytesTransport(data), folder, profile, "replay")
        with console:
            while console.eof is None:
                console.wait_for_output(1.0)
            deaths = console.death_lines
            events = list(console.events)
            return Replay(events, generations(events), console.line_count,
                          console.partial_line, deaths, _idle(events, console),
                          time.monotonic() - start)


def _idle(events: list[Event], console: Console) -> Event | None:
    """The prompt the recording ends at, if nothing came after it."""
    if not events or events[-1].kind != PROMPT:
        return None
    last = events[-1]
    if console.partial_line:
        return last if last.line == console.partial_line else None
    tail = console.tail(1)
    return last if tail and tail[-1] == last.line else None


def _fields(event: Event) -> str:
    parts = []
    for name, value in event.fields.items():
        if name == "text":
            continue
        raw = event.raw_fields.get(name)
        shown = repr(value) if isinstance(value, str) and " " in value else str(value)
        if value is None and raw is not None:
            shown = f"None (printed {raw!r})"
        parts.append(f"{name}={shown}")
    return " ".join(parts)


def report(profile: Profile, log: Path, result: Replay, suites: Path | None,
           config: dict[str, str], out: TextIO) -> int:
    mode = "repl" if profile.interaction.is_repl(config) else "script"
    print(f"profile {profile.name} ({profile.source}), interaction {mode}", file=out)
    print(f"log {log}: {result.lines} lines" + (
        f", last line incomplete: {result.partial!r}" if result.partial else "")
        + f" (replayed in {result.seconds:.2f} s)", file=out)
    print(f"\nevents ({len(result.events)}):", file=out)
    for event in result.events:
        print(f"  {event.time:9.3f}  {event.kind:<14} {_fields(event)}", file=out)
    print(f"\ngenerations ({len(result.generations)}):", file=out)
    for i, gen in enumerate(result.generations, 1):
        tokens = "?" if gen.tokens is None else gen.tokens
        ids = f", {len(gen.ids)} ids" if gen.ids else ""
        print(f"  #{i}: tokens={tokens}{ids}, text {gen.text!r}", file=out)
    if result.deaths:
        print("\ndeath strings seen (a wait fails there):", file=out)
        for line in result.deaths:
            print(f"  {line}", file=out)
    done = [e for e in result.events if e.kind == "done"]
    if mode == "script":
        over = (f"yes, at {done[0].line!r}" if done else
                "no: no `done` event (a wait for the end of the run would time out)")
    else:
        over = (f"yes, idle at the prompt {result.idle_prompt.line!r}"
                if result.idle_prompt is not None else
                "no: the recording does not end idle at the prompt")
    print(f"\nrun over: {over}", file=out)
    if suites is not None and suites.is_dir():
        tests = read_suites(suites)
        print(f"\nsuites ({suites}):", file=out)
        runs = 0
        for test in tests:
            reason = test.needs.skip_reason(profile, config)
            runs += reason is None
            status = "run " if reason is None else "skip"
            tail = "" if reason is None else f": {reason}"
            print(f"  {status} {test.suite}::{test.name}{tail}", file=out)
        print(f"  {runs} of {len(tests)} would run (board features decide the rest)",
              file=out)
    return 0


def _default_suites() -> Path | None:
    local = Path("suites")
    if (local / "test_boot.py").is_file():
        return local
    from pytest_baremetal import resources

    return resources.bundled_suites()


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="pytest-baremetal profile",
        description="Work on a marker profile without booting anything.")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="replay a captured console log through a profile")
    check.add_argument("profile", help="profile file, or the name of a shipped profile")
    check.add_argument("log", type=Path, help="a <name>.console.log or a plain capture")
    check.add_argument("--suites", type=Path, default=None,
                       help="folder of the suites to judge (default: ./suites, else the "
                       "suites that come with the plugin)")
    check.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                       help="the guest configuration of the run (e.g. mode=repl)")
    table = sub.add_parser("table", help="print the README table of what each suite reads")
    table.add_argument("--suites", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.suites is None:
        args.suites = _default_suites()
    try:
        if args.action == "table":
            from pytest_baremetal.markers.needs import markdown_table

            if args.suites is None:
                raise ConfigError("--suites", "", "no suites folder here; give --suites DIR")
            out.write(markdown_table(args.suites))
            return 0
        profile = resolve_profile(args.profile)
        config: dict[str, str] = {}
        for item in args.config:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError("--config", key or item, "must be KEY=VALUE", value=item)
            config[key] = value
        result = replay(profile, read_log(args.log))
        return report(profile, args.log, result, args.suites, config, out)
    except BaremetalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

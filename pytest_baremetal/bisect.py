"""``pytest-baremetal bisect``: the first slow commit, found by ``git bisect run``.

It builds and boots the good and the bad revision on a deterministic board
(``qemu-tcg-icount``: the same build always gives the same tok/s), then lets ``git bisect
run`` call this module's ``--step`` mode on each commit in between: build with the user's
command, boot once, and call the commit slow when its figure is nearer the bad one than
the good one (geometric midpoint). A commit that does not build, or whose guest does not
finish, is skipped (exit 125). Each figure is recorded in a JSON file so the final line can
show the first slow commit with its figure and its parent's.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_baremetal.errors import BaremetalError, ConfigError

SKIP = 125  # git bisect run: this commit cannot be tested
DEFAULT_GUEST = ("bench=0", "steps=16", "repeats=1")
"""A short generation: the board is deterministic, so one repeat is exact."""


class BisectError(BaremetalError):
    """The bisection cannot start or cannot finish (bad revision, not slower, git failed)."""


@dataclass(frozen=True)
class Measure:
    """How one commit is built and measured."""

    repo: Path
    build: tuple[str, ...]
    board: str
    board_dirs: tuple[Path, ...]
    efi: Path
    files: dict[str, Path]
    guest: tuple[str, ...]
    metric: str = "decode_tok_s"
    timeout_s: float = 600.0


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise BisectError(f"git {' '.join(args)} failed in {repo}: "
                          f"{(result.stderr or result.stdout).strip()}")
    return result.stdout.strip()


def build(m: Measure) -> str | None:
    """Run the user's build command in the repository; the error text, or None when it built."""
    try:
        result = subprocess.run(list(m.build), cwd=m.repo, capture_output=True, text=True,
                                timeout=m.timeout_s)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{shlex.join(m.build)}: {error}"
    if result.returncode != 0:
        return f"{shlex.join(m.build)} exited {result.returncode}: {result.stderr[-500:]}"
    return None


def boot_figure(m: Measure) -> float:
    """Boot the freshly built EFI once on the board and return the median of ``metric``."""
    from pytest_baremetal.session import BaremetalSession
    from pytest_baremetal.settings import Settings

    if not m.efi.is_file():
        raise BisectError(f"the build left no EFI application at {m.efi} (--efi)")
    work = Path(tempfile.mkdtemp(prefix="bm-bisect-"))
    try:
        efi = work / m.efi.name  # a frozen copy: the next checkout may rebuild in place
        shutil.copy2(m.efi, efi)
        settings = Settings(root=m.repo, targets=(m.board,), board_dirs=m.board_dirs, efi=efi,
                            efi_files=dict(m.files), log_dir=work / "logs",
                            history=str(work / "h.sqlite"))
        session = BaremetalSession(settings)
        try:
            values: dict[str, object] = {k: v for k, _, v in (i.partition("=") for i in m.guest)}
            config = session.guest_config(dict(values), "bisect --guest")
            dut = session.pool.fresh(m.board, config)
            try:
                done = dut.wait_done(timeout=m.timeout_s)
                if done.fields.get("status") != "ok":
                    raise BisectError(f"the guest ended with {done.line!r}; see {dut.log_path}")
                figures = [float(str(e.fields[m.metric])) for e in dut.events("perf")
                           if m.metric in e.fields]
            finally:
                dut.close()
        finally:
            session.close()
        if not figures:
            raise BisectError(f"the guest printed no {m.metric}")
        return float(statistics.median(figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(m: Measure, rev: str) -> float:
    """Check out ``rev``, build it and boot it; its figure."""
    git(m.repo, "checkout", "-q", "--detach", rev)
    problem = build(m)
    if problem is not None:
        raise BisectError(f"{rev} does not build: {problem}")
    return boot_figure(m)


def is_slow(value: float, good: float, bad: float) -> bool:
    """Nearer the bad figure than the good one, on a log scale."""
    return abs(math.log(value / bad)) < abs(math.log(value / good))


def step(m: Measure, good: float, bad: float, record: Path) -> int:
    """One ``git bisect run`` step: 0 good, 1 slow, 125 cannot tell."""
    commit = git(m.repo, "rev-parse", "HEAD")
    problem = build(m)
    if problem is not None:
        print(f"bisect: {commit[:10]} skipped: {problem}", file=sys.stderr)
        return SKIP
    try:
        value = boot_figure(m)
    except BaremetalError as error:
        print(f"bisect: {commit[:10]} skipped: {error}", file=sys.stderr)
        return SKIP
    figures = json.loads(record.read_text()) if record.is_file() else {}
    figures[commit] = value
    record.write_text(json.dumps(figures))
    slow = is_slow(value, good, bad)
    print(f"bisect: {commit[:10]} {m.metric}={value:.4g} ({'slow' if slow else 'good'})")
    return 1 if slow else 0


def bisect(m: Measure, good_rev: str, bad_rev: str, min_change: float = 0.02) -> str:
    """Run the whole bisection; the report (first slow commit with figures)."""
    if git(m.repo, "status", "--porcelain", "--untracked-files=no"):
        raise BisectError(f"{m.repo} has uncommitted changes: commit or stash them first")
    good_sha = git(m.repo, "rev-parse", "--verify", f"{good_rev}^{{commit}}")
    bad_sha = git(m.repo, "rev-parse", "--verify", f"{bad_rev}^{{commit}}")
    start = git(m.repo, "rev-parse", "--abbrev-ref", "HEAD")
    if start == "HEAD":
        start = git(m.repo, "rev-parse", "HEAD")
    work = Path(tempfile.mkdtemp(prefix="bm-bisect-run-"))
    record = work / "figures.json"
    try:
        good = measure(m, good_sha)
        bad = measure(m, bad_sha)
        print(f"bisect: good {good_sha[:10]} {m.metric}={good:.4g}, "
              f"bad {bad_sha[:10]} {m.metric}={bad:.4g}", flush=True)
        if abs(bad / good - 1.0) < min_change:
            raise BisectError(f"{bad_rev} ({bad:.4g}) is not {min_change:.0%} away from "
                              f"{good_rev} ({good:.4g}) on {m.board}: nothing to bisect")
        record.write_text(json.dumps({good_sha: good, bad_sha: bad}))
        git(m.repo, "checkout", "-q", start)
        git(m.repo, "bisect", "start", bad_sha, good_sha)
        command = [sys.executable, "-m", "pytest_baremetal", "bisect", "--step",
                   "--good-figure", repr(good), "--bad-figure", repr(bad),
                   "--record", str(record), *_measure_args(m)]
        run = subprocess.run(["git", "-C", str(m.repo), "bisect", "run", *command],
                             capture_output=True, text=True)
        log = run.stdout + run.stderr
        for line in log.splitlines():
            if line.startswith("bisect: "):  # each step's figure or why it was skipped
                print(line, flush=True)
        first = next((line.split()[0] for line in log.splitlines()
                      if line.endswith("is the first bad commit")), None)
        if first is None:
            raise BisectError(f"git bisect run found no first slow commit:\n{log[-3000:]}")
        return _report(m, first, json.loads(record.read_text()), good, bad)
    finally:
        subprocess.run(["git", "-C", str(m.repo), "bisect", "reset"],
                       capture_output=True)
        subprocess.run(["git", "-C", str(m.repo), "checkout", "-q", start], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _report(m: Measure, first: str, figures: dict[str, float], good: float, bad: float) -> str:
    subject = git(m.repo, "log", "-1", "--format=%s", first)
    parent = git(m.repo, "rev-parse", f"{first}^")
    value = figures.get(first, bad)
    before = figures.get(parent, good)
    return (f"first slow commit: {first} {subject}\n"
            f"  {m.metric} {value:.4g} vs {before:.4g} at its parent {parent[:10]} "
            f"({(value / before - 1) * 100:+.1f}%) on {m.board}; good {good:.4g}, "
            f"bad {bad:.4g}")


def _measure_args(m: Measure) -> list[str]:
    args = ["--build", shlex.join(m.build), "--target", m.board, "--repo", str(m.repo),
            "--efi", str(m.efi), "--metric", m.metric]
    for d in m.board_dirs:
        args += ["--bm-boards", str(d)]
    for name, path in m.files.items():
        args += ["--file", f"{name}={path}"]
    for item in m.guest:
        args += ["--guest", item]
    return args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--good", help="a revision with the good figure")
    parser.add_argument("--bad", help="a later revision with the slow figure")
    parser.add_argument("--build", required=True,
                        help="build command, run in the repository (e.g. 'make -C guest')")
    parser.add_argument("--target", required=True,
                        help="a deterministic board (qemu-tcg-icount)")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="git repository (.)")
    parser.add_argument("--efi", type=Path, default=None,
                        help="EFI application the build writes (guest/build/BOOTX64.EFI)")
    parser.add_argument("--file", action="append", default=[], metavar="NAME=PATH",
                        help="file beside the EFI (default: guest/models/tiny model and "
                        "tokenizer)")
    parser.add_argument("--bm-boards", action="append", default=[], metavar="DIR",
                        help="folder of board files (default REPO/boards and the shipped ones)")
    parser.add_argument("--guest", action="append", default=None, metavar="KEY=VALUE",
                        help=f"guest configuration (default {' '.join(DEFAULT_GUEST)})")
    parser.add_argument("--metric", default="decode_tok_s")
    parser.add_argument("--step", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--good-figure", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--bad-figure", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)


def measure_from(args: argparse.Namespace) -> Measure:
    repo = args.repo.resolve()
    files: dict[str, Path] = {}
    for item in args.file:
        name, sep, path = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--file {item!r}: expected NAME=PATH")
        files[name] = (repo / path).resolve()
    if not files:
        tiny = repo / "guest" / "models" / "tiny"
        files = {n: tiny / n for n in ("model.bin", "tokenizer.bin")}
    shipped = Path(__file__).resolve().parents[1] / "boards"
    dirs = [Path(d).resolve() for d in args.bm_boards] or [repo / "boards", shipped]
    build_cmd = tuple(shlex.split(args.build))
    if not build_cmd:
        raise ConfigError("--build: empty command")
    guest = tuple(args.guest) if args.guest else DEFAULT_GUEST
    for item in guest:
        if "=" not in item:
            raise ConfigError(f"--guest {item!r}: expected KEY=VALUE")
    efi = (repo / (args.efi or Path("guest/build/BOOTX64.EFI"))).resolve()
    return Measure(repo, build_cmd, args.target, tuple(d for d in dirs if d.is_dir()), efi,
                   files, guest, args.metric)


def main(argv: Sequence[str] | None = None) -> int:
    """``bisect`` (or one ``--step`` of it); 0 when the first slow commit is printed."""
    parser = argparse.ArgumentParser(prog="pytest-baremetal bisect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        m = measure_from(args)
        if args.step:
            if args.good_figure is None or args.bad_figure is None or args.record is None:
                parser.error("--step needs --good-figure, --bad-figure and --record")
            return step(m, args.good_figure, args.bad_figure, args.record)
        if not args.good or not args.bad:
            parser.error("--good REV and --bad REV are required")
        print(bisect(m, args.good, args.bad))
    except BaremetalError as error:
        print(f"bisect: {error}", file=sys.stderr)
        return SKIP if args.step else 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

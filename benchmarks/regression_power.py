"""How well the nightly regression check tells a real slowdown from noise.

Simulation mode (default) draws tok/s from the two-level noise model of
``pytest_baremetal.history.noise`` (repeat-to-repeat ``--cv``, boot-to-boot ``--boot-cv``;
``--from-store`` fits both to a board's measured history) and prints, for each injected
slowdown, how often ``stats.compare`` calls it a regression. The 0% row is the false-alarm
rate.

``--real`` boots the reference guest under QEMU TCG with ``slowdown_pct`` in its run.cfg:
it collects a pool of boots per slowdown with :func:`collect_samples`, then runs the same
comparisons on random draws of those real boots (baseline and current boots disjoint).

    python benchmarks/regression_power.py                   # simulation, defaults
    python benchmarks/regression_power.py --boot-cv 0.02 --boots 5
    python benchmarks/regression_power.py --from-store reports/history.sqlite --board qemu-tcg
    python benchmarks/regression_power.py --real --real-pool 12
    python benchmarks/regression_power.py --changes         # change points over a month

``--changes`` measures the change-point detection of ``history --changes`` instead: series
of ``--nights`` per-night medians with icount-like noise (``--series-cv``), a 2/5/10% step
at a random night or a 1%-per-night drift over the last 5 nights, and flat series for the
false change points.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from pytest_baremetal.build_under_test import reference_guest
from pytest_baremetal.errors import BootError
from pytest_baremetal.guestconfig import GuestConfig
from pytest_baremetal.history import open_store
from pytest_baremetal.history.noise import NoiseModel, estimate_noise
from pytest_baremetal.history.stats import DecisionParams, compare
from pytest_baremetal.session import BaremetalSession
from pytest_baremetal.settings import Settings

TARGET_SLOWDOWN, TARGET_POWER, TARGET_FALSE_ALARMS = 5.0, 0.90, 0.02
Groups = list[list[float]]
# (rng, slowdown_pct, current boots, baseline boots) -> (current, baseline)
Draw = Callable[[np.random.Generator, float, int, int], tuple[Groups, Groups]]


MODEL_FILES = ("model.bin", "tokenizer.bin")


class RealGuest:
    """The reference guest booted through the plugin's own machinery (``BaremetalSession``,
    ``pool.fresh``, the reference marker profile), one fresh boot per sample."""

    board = "qemu-tcg-icount"  # instruction-counted time: see boards/qemu-tcg-icount.yaml
    # the shipped tiny model stops (EOS) after 150 tokens of the default prompt: ~1.1 s of
    # decode per repeat under TCG on the 2-core reference machine
    steps = 150

    def __init__(self) -> None:
        self._session: BaremetalSession | None = None
        self.boots = 0
        self.log_dir: Path | None = None

    def session(self) -> BaremetalSession:
        if self._session is None:
            root = Path(__file__).resolve().parents[1]
            guest = root / "guest"
            self.log_dir = Path(tempfile.mkdtemp(prefix="bm-regression-power-"))
            try:  # rebuild when stale; others edit guest/src, so keep the last good build
                reference_guest(root)
            except BootError as error:
                print(f"WARNING: UEFI guest rebuild failed, using the last build: "
                      f"{str(error).splitlines()[-1]}", file=sys.stderr)  # fmt: skip
            efi = self.log_dir / "BOOTX64.EFI"  # one frozen binary for the whole run
            shutil.copy2(guest / "build" / "BOOTX64.EFI", efi)
            tiny = guest / "models" / "tiny"
            settings = Settings(root=root, targets=(self.board,), board_dirs=(root / "boards",),
                                efi=efi, efi_files={n: tiny / n for n in MODEL_FILES},
                                log_dir=self.log_dir / "logs",
                                history=str(self.log_dir / "h.sqlite"))  # fmt: skip
            self._session = BaremetalSession(settings)
        return self._session

    def boot(self, slowdown_pct: float, repeats: int) -> list[float]:
        values: dict[str, object] = {"bench": 0, "steps": self.steps, "repeats": repeats,
                                     "slowdown_pct": slowdown_pct}  # fmt: skip
        config = GuestConfig.of(values)  # type: ignore[arg-type]
        dut = self.session().pool.fresh(self.board, config)
        try:
            done = dut.wait_done(timeout=600)
            if done.fields.get("status") != "ok":
                raise RuntimeError(f"guest ended with {done.line!r}; see {dut.log_path}")
            speeds = [float(e.fields["decode_tok_s"]) for e in dut.events("perf")]  # type: ignore[arg-type]
        finally:
            dut.close()
        self.boots += 1
        if len(speeds) != repeats:
            raise RuntimeError(f"{len(speeds)} [perf] lines for {repeats} repeats: {dut.log_path}")
        return speeds

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


REAL_GUEST = RealGuest()


def collect_samples(slowdown_pct: float, repeats: int) -> list[float]:
    """Boot the reference guest once under QEMU TCG with ``slowdown_pct`` and ``repeats`` in
    its run.cfg; return the boot's ``decode_tok_s`` values, one per timed repeat.

    Board ``REAL_GUEST.board`` (``--board``), the shipped tiny model, ``bench=0``,
    ``steps=150`` (the whole story of the default prompt, ~1.1 s of decode per repeat);
    the QEMU is gone on return.
    """
    return REAL_GUEST.boot(slowdown_pct, repeats)


def collect_pool(slowdowns: Sequence[float], boots: int, repeats: int) -> dict[float, Groups]:
    """``boots`` boots per slowdown, interleaved (0, 2, 5, 10, 0, 2, ...) so that drifting
    host load hits every slowdown alike instead of biasing the last ones."""
    pool: dict[float, Groups] = {s: [] for s in slowdowns}
    try:
        for round_ in range(boots):
            for s in slowdowns:
                pool[s].append(collect_samples(s, repeats))
                print(f"  boot {round_ + 1}/{boots} slowdown {s:g}%: median "
                      f"{statistics.median(pool[s][-1]):.1f} tok/s", file=sys.stderr, flush=True)
    finally:
        REAL_GUEST.close()
    return pool


def cv(values: Sequence[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a rate k/n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def simulated_draw(model: NoiseModel, repeats: int, mean: float = 25.0) -> Draw:
    """Both sides drawn from the noise model; the current side slowed down."""

    def draw(
        rng: np.random.Generator, slowdown: float, cur: int, base: int
    ) -> tuple[Groups, Groups]:
        return (
            model.simulate(rng, mean, cur, repeats, slowdown),
            model.simulate(rng, mean, base, repeats),
        )

    return draw


def real_draw(pool: dict[float, Groups]) -> Draw:
    """Boots drawn from the pools of real boots; the baseline always from the 0% pool, and
    never the same boot on both sides."""

    def draw(
        rng: np.random.Generator, slowdown: float, cur: int, base: int
    ) -> tuple[Groups, Groups]:
        order = [int(i) for i in rng.permutation(len(pool[0.0]))]
        baseline = [pool[0.0][i] for i in order[:base]]
        if slowdown == 0.0:
            return [pool[0.0][i] for i in order[base : base + cur]], baseline
        pick = rng.choice(len(pool[slowdown]), size=cur, replace=False)
        return [pool[slowdown][int(i)] for i in pick], baseline

    return draw


def run_table(
    draw: Draw,
    slowdowns: Sequence[float],
    boots: int,
    baseline_boots: int,
    trials: int,
    params: DecisionParams,
    seed: int,
) -> dict[float, int]:
    """Regressions flagged out of ``trials`` for each slowdown."""
    out: dict[float, int] = {}
    for s in slowdowns:
        rng = np.random.default_rng([seed, int(s * 1000)])
        flagged = 0
        for _ in range(trials):
            cur, base = draw(rng, s, boots, baseline_boots)
            flagged += compare("decode_tok_s", cur, base, params).status == "regression"
        out[s] = flagged
    return out


CHANGE_KINDS = ("flat", "step:2", "step:5", "step:10", "drift:1:5")


def changes_table(noise_cvs: Sequence[float], trials: int, nights: int, seed: int) -> bool:
    """Print change-point detection per kind and noise; True when the targets are met
    (>= 95% for >= 5% steps and the 5-night drift, <= 2% false change points)."""
    from pytest_baremetal.history.noise import changepoint_rate

    print(f"change points (E-divisive, permutation test) on {nights}-night series, "
          f"{trials} series per row; host CPU: {_host_cpu()}")
    print(f"{'noise CV':>8}  {'series':>10}  {'found':>7}  95% CI        target")
    ok = True
    for cv_ in noise_cvs:
        for kind in CHANGE_KINDS:
            start = time.monotonic()
            rate = changepoint_rate(kind, cv_, trials, seed, nights)
            low, high = wilson(round(rate * trials), trials)
            if kind == "flat":
                target, met = "<= 2% (false change points)", rate <= 0.02
            elif kind == "step:2":
                target, met = "(no target)", True
            else:
                target, met = ">= 95%", rate >= 0.95
            ok &= met
            print(f"{cv_:>8.2%}  {kind:>10}  {rate:>7.1%}  {low:.1%}..{high:.1%}  {target}"
                  f"{'' if met else '  NOT MET'}  ({time.monotonic() - start:.1f} s)")
    print("target met" if ok else "target NOT met")
    return ok


def _host_cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cv", type=float, default=0.02, help="repeat-to-repeat CV (0.02)")
    ap.add_argument("--boot-cv", type=float, default=0.01, help="boot-to-boot CV (0.01)")
    ap.add_argument("--from-store", help="fit --cv/--boot-cv to this history store")
    ap.add_argument("--board", default="qemu-tcg-icount",
                    help="board for --real and --from-store (qemu-tcg-icount: noise-free "
                    "instruction-counted time; qemu-tcg: wall-clock time, noisy when shared)")
    ap.add_argument("--repeats", "--n", type=int, default=5, help="timed repeats per boot")
    ap.add_argument("--boots", type=int, default=3, help="boots per nightly (current side)")
    ap.add_argument("--baseline-boots", type=int, default=9, help="boots in the baseline")
    ap.add_argument("--trials", type=int, default=400, help="comparisons per slowdown")
    ap.add_argument("--slowdowns", default="0,2,5,10", help="slowdown_pct values")
    ap.add_argument("--min-effect", type=float, default=DecisionParams().min_effect)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--real", action="store_true", help="boot the guest (collect_samples)")
    ap.add_argument("--real-pool", type=int, default=12, help="--real: boots per slowdown")
    ap.add_argument("--changes", action="store_true", help="change-point detection figures")
    ap.add_argument("--series-cv", default="0.002,0.005",
                    help="--changes: night-to-night CVs (icount-like)")
    ap.add_argument("--nights", type=int, default=30, help="--changes: nights per series")
    args = ap.parse_args(argv)
    if args.changes:
        cvs = [float(c) for c in args.series_cv.split(",")]
        return 0 if changes_table(cvs, args.trials, args.nights, args.seed) else 1
    slowdowns = [float(s) for s in args.slowdowns.split(",")]
    params = DecisionParams(min_effect=args.min_effect)

    if args.real:
        REAL_GUEST.board = args.board
        if args.real_pool < args.boots + args.baseline_boots:
            ap.error("--real-pool must hold the baseline and current boots of a 0% comparison")
        if 0.0 not in slowdowns:
            ap.error("--real needs 0 among --slowdowns (the baseline pool)")
        start = time.monotonic()
        load = os.getloadavg()
        pool = collect_pool(slowdowns, args.real_pool, args.repeats)
        model = estimate_noise(pool[0.0])
        draw = real_draw(pool)
        source = (f"real QEMU TCG boots: {args.real_pool} per slowdown, "
                  f"{time.monotonic() - start:.0f} s; load average at start {load[0]:.2f}; "
                  f"logs {REAL_GUEST.log_dir}")  # fmt: skip
        print("measured pools (decode tok/s; median of the boots' medians, repeat CV = median "
              "over boots of the CV of their repeats, boot CV = CV of the boots' medians):")
        ref = statistics.median(statistics.median(g) for g in pool[0.0])
        for s in slowdowns:
            meds = [statistics.median(g) for g in pool[s]]
            med = statistics.median(meds)
            rcv = statistics.median(cv(g) for g in pool[s])
            print(f"  {s:>4g}%  {med:7.2f} tok/s  {med / ref - 1:+6.1%} (expected "
                  f"{-s / (100 + s):+6.1%})  repeat CV {rcv:.2%}  boot CV {cv(meds):.2%}")
    else:
        if args.from_store:
            with open_store(args.from_store) as store:
                runs = store.runs(board=args.board, statuses=("passed",))
                groups = [
                    [s.value for s in v]
                    for v in store.samples([r.id for r in runs], "decode_tok_s").values()
                ]
            model = estimate_noise(groups)
            source = f"simulation, noise fitted to {len(groups)} boots of {args.board}"
        else:
            model = NoiseModel(args.cv, args.boot_cv)
            source = "simulation, noise given on the command line"
        draw = simulated_draw(model, args.repeats)

    print(f"regression check power ({source})")
    print(f"noise: repeat-to-repeat CV {model.within_cv:.2%}, boot-to-boot CV "
          f"{model.between_cv:.2%}")  # fmt: skip
    print(f"nightly budget: {args.boots} boots x {args.repeats} repeats per board; baseline "
          f"median:{args.baseline_boots} = the last {args.baseline_boots} passing boots from "
          f"history; minimum effect {params.min_effect:.0%}; {args.trials} comparisons "
          "per row")  # fmt: skip
    flagged = run_table(draw, slowdowns, args.boots, args.baseline_boots, args.trials, params,
                        args.seed)  # fmt: skip
    print(f"{'slowdown_pct':>12}  {'tok/s change':>12}  {'flagged':>8}  {'rate':>6}  95% CI")
    for s, k in flagged.items():
        low, high = wilson(k, args.trials)
        kind = "false alarms" if s == 0 else "detection"
        print(f"{s:>11.0f}%  {-s / (100 + s):>12.1%}  {k:>8}  {k / args.trials:>6.1%}  "
              f"{low:.1%}..{high:.1%}  {kind}")  # fmt: skip
    ok = True
    if 0.0 in flagged:
        fa = flagged[0.0] / args.trials
        ok &= fa <= TARGET_FALSE_ALARMS
        print(f"false alarms at 0%: {fa:.1%} (target <= {TARGET_FALSE_ALARMS:.0%})")
    if TARGET_SLOWDOWN in flagged:
        power = flagged[TARGET_SLOWDOWN] / args.trials
        ok &= power >= TARGET_POWER
        print(f"detection at {TARGET_SLOWDOWN:.0f}%: {power:.1%} (target >= {TARGET_POWER:.0%})")
    print("target met" if ok else "target NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

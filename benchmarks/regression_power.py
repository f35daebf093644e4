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
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from pytest_baremetal.history import open_store
from pytest_baremetal.history.noise import NoiseModel, estimate_noise
from pytest_baremetal.history.stats import DecisionParams, compare

TARGET_SLOWDOWN, TARGET_POWER, TARGET_FALSE_ALARMS = 5.0, 0.90, 0.02
Groups = list[list[float]]
# (rng, slowdown_pct, current boots, baseline boots) -> (current, baseline)
Draw = Callable[[np.random.Generator, float, int, int], tuple[Groups, Groups]]


def collect_samples(slowdown_pct: float, repeats: int) -> list[float]:
    """Boot the reference guest once under QEMU TCG with ``slowdown_pct`` and ``repeats`` in
    its run.cfg; return the boot's ``decode_tok_s`` values, one per timed repeat.

    To be implemented with the plugin once the guest exists (board ``qemu-tcg``, the
    reference profile, ``[perf] repeat=...`` events).
    """
    raise NotImplementedError(
        "collect_samples needs the reference guest and the plugin's QEMU target"
    )


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


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cv", type=float, default=0.02, help="repeat-to-repeat CV (0.02)")
    ap.add_argument("--boot-cv", type=float, default=0.01, help="boot-to-boot CV (0.01)")
    ap.add_argument("--from-store", help="fit --cv/--boot-cv to this history store")
    ap.add_argument("--board", default="qemu-tcg", help="board for --from-store")
    ap.add_argument("--repeats", "--n", type=int, default=5, help="timed repeats per boot")
    ap.add_argument("--boots", type=int, default=3, help="boots per nightly (current side)")
    ap.add_argument("--baseline-boots", type=int, default=9, help="boots in the baseline")
    ap.add_argument("--trials", type=int, default=400, help="comparisons per slowdown")
    ap.add_argument("--slowdowns", default="0,2,5,10", help="slowdown_pct values")
    ap.add_argument("--min-effect", type=float, default=DecisionParams().min_effect)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--real", action="store_true", help="boot the guest (collect_samples)")
    ap.add_argument("--real-pool", type=int, default=12, help="--real: boots per slowdown")
    args = ap.parse_args(argv)
    slowdowns = [float(s) for s in args.slowdowns.split(",")]
    params = DecisionParams(min_effect=args.min_effect)

    if args.real:
        if args.real_pool < args.boots + args.baseline_boots:
            ap.error("--real-pool must hold the baseline and current boots of a 0% comparison")
        start = time.monotonic()
        pool = {
            s: [collect_samples(s, args.repeats) for _ in range(args.real_pool)] for s in slowdowns
        }
        model = estimate_noise(pool[0.0])
        draw = real_draw(pool)
        source = (f"real QEMU TCG boots: {args.real_pool} per slowdown, "
                  f"{time.monotonic() - start:.0f} s; fitted {model}")  # fmt: skip
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

"""Model-based search against its baselines on a recorded table (issue 10's two ratios), with intervals.

    python benchmarks/model_based.py --seeds 30
    python benchmarks/model_based.py --seeds 30 --variant "bohb_rf=hpo=bohb hpo.searcher_options.random_fraction=0.33"

Runs random, asha, tpe, bohb, gp and mobster (``conf/hpo/<name>.yaml``, plus any ``--variant name=overrides``) with the
simulator exactly as benchmarks/compare.py does (same table, budget, workers, per-epoch incumbent,
job overhead: ``--job-overhead``, default compare.py's), then prints

- for each multi-fidelity algorithm: the median time to the table's top-1% target (the 1% quantile of its
  final errors) as a fraction of ASHA's, with a 90% bootstrap interval over seeds, and the hit rate;
- for each algorithm: the time to random search's median best at the budget as a fraction of random
  search's time (compare.py's headline ratio), with its interval.
Issue 10's targets: the multi-fidelity preset <= 0.5 of ASHA with hit rate >= 0.99; tpe <= 0.5 of random.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import (  # noqa: E402
    OURS, Run, add_common_arguments, best_at, default_budget, half_time, interval_bounds, load_table, overrides_runner,
    ratio_interval, ratio_text, seconds_text, speedup_times, time_ratio, time_to,
)

BASE = ("random", "asha", "tpe", "bohb", "gp", "mobster")


def target_ratio(reference: list[Run], other: list[Run], target: float, level: float = 0.9, n_boot: int = 2000,
                 seed: int = 0) -> tuple[float, float, float, float]:
    """``(t_other, t_reference, low, high)``: the median times to ``target`` of ``other`` and ``reference``
    (``inf``: fewer than half the seeds got there), and a bootstrap interval of their ratio resampling the
    seeds of both (see ``compare.interval_bounds``)."""
    t_ref = np.array([time_to(r.trace, target) for r in reference])
    t_other = np.array([time_to(r.trace, target) for r in other])
    rng = np.random.default_rng(seed)
    ratios = [time_ratio(half_time(list(t_other[rng.integers(len(other), size=len(other))])),
                         half_time(list(t_ref[rng.integers(len(reference), size=len(reference))])))
              for _ in range(n_boot)]
    return (half_time(list(t_other)), half_time(list(t_ref))) + interval_bounds(ratios, level)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--base", default=",".join(BASE), help="which of compare.py's algorithms to run")
    parser.add_argument("--variant", action="append", default=[], help="name=space-separated hpo overrides")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first..first+seeds-1: confirm a screen's pick on seeds it was not chosen on")
    parser.add_argument("--versus", default=None,
                        help="one more reference for the time to 1%%, e.g. a variant with hpo.keep_alive=false")
    args = parser.parse_args(argv)
    logging.getLogger("hydra_hpo").setLevel(logging.ERROR)
    table, space = load_table(args)
    budget = args.budget or default_budget(table)
    final = table.final_errors()
    target = float(np.quantile(final[np.isfinite(final)], 0.01))
    unknown = [name for name in args.base.split(",") if name not in OURS]
    if unknown:
        parser.error(f"--base {unknown[0]!r}: not one of compare.py's algorithms ({', '.join(OURS)}); for another "
                     f"preset use --variant \"{unknown[0]}=hpo={unknown[0]}\"")
    algorithms = {name: OURS[name] for name in args.base.split(",")}
    for variant in args.variant:
        name, _, overrides = variant.partition("=")
        algorithms[name] = overrides.split()
    seeds = f"{args.seeds} seeds" + (f" from {args.first_seed}" if args.first_seed else "")
    print(f"{args.table.name}: {seeds}, {args.workers} workers, budget {budget:g} s, "
          f"job overhead {args.job_overhead:g} s per job ({args.continue_overhead:g} s continuing a waiting job), "
          f"top-1% target {target:.4f}")
    runs: dict[str, list[Run]] = {}
    for name, overrides in algorithms.items():
        start = time.perf_counter()
        runner = overrides_runner(overrides, table, space, args.workers, budget, args.incumbent,
                                  args.job_overhead, args.continue_overhead)
        runs[name] = [runner(seed) for seed in range(args.first_seed, args.first_seed + args.seeds)]
        print(f"  {name} ({' '.join(overrides)}): {args.seeds} seeds in {time.perf_counter() - start:.1f} s",
              flush=True)
    versus = f" vs {args.versus} [90% interval] |" if args.versus else ""
    print(f"\n| algorithm | median s to 1% | hit 1% | vs asha [90% interval] |{versus} vs random to R [90% interval] "
          "| best at budget (mean ± se) |")
    print("|---|---|---|---|---|---|" + ("---|" if versus else ""))
    for name, seed_runs in runs.items():
        times = [time_to(r.trace, target) for r in seed_runs]
        finals = np.array([best_at(r.trace, budget) for r in seed_runs])
        cells = [name, seconds_text(half_time(times)), f"{np.mean(np.isfinite(times)):.2f}", "", "",
                 f"{finals.mean():.4f} ± {finals.std(ddof=1) / math.sqrt(len(finals)):.4f}"]
        if "asha" in runs:
            cells[3] = ratio_text(*target_ratio(runs["asha"], seed_runs, target), budget=budget)
        if args.versus:
            cells.insert(4, ratio_text(*target_ratio(runs[args.versus], seed_runs, target), budget=budget))
        if "random" in runs:
            _, t_random, t_other = speedup_times(runs["random"], seed_runs, budget)
            cells[-2] = ratio_text(t_other, t_random, *ratio_interval(runs["random"], seed_runs, budget), budget)
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

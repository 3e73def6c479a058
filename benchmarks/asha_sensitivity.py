"""How ASHA's advantage over random search depends on its rungs (r_min, eta) and on the budget.

    python benchmarks/asha_sensitivity.py                       # 20 seeds, budgets 0.5x, 1x, 2x the default
    python benchmarks/asha_sensitivity.py --seeds 50 --r-min 1,2,4 --eta 2,3,4

For each budget, random search runs first: R = its median best at that budget, t_random = the time by which
half its seeds reached R (the same definitions as benchmarks/compare.py). Then each ASHA setting runs on the
same seeds, and the table reports t_asha / t_random (issue 4's target: <= 1/3) with its 90% bootstrap
interval over seeds, and ASHA's mean best at the budget (random search's is in the row). All runs go through the real tuner, searcher and scheduler on the simulated clock.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # compare.py beside this script

from compare import (  # noqa: E402
    TRIALS_PER_WORKER, add_common_arguments, best_at, default_budget, load_table, overrides_runner,
    ratio_interval, speedup_times,
)


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--r-min", type=ints, default=[1, 2], help="comma-separated")
    parser.add_argument("--eta", type=ints, default=[2, 3, 4], help="comma-separated")
    parser.add_argument("--budget-scale", type=floats, default=[0.5, 1.0, 2.0],
                        help=f"multiples of the default budget ({TRIALS_PER_WORKER} mean full trainings per worker)")
    args = parser.parse_args(argv)
    logging.getLogger("hydra_hpo").setLevel(logging.ERROR)

    table, space = load_table(args)
    settings = [(r, e) for r in args.r_min for e in args.eta]
    print(f"Table {args.table.name} ({len(table)} rows), {args.seeds} seeds, {args.workers} simulated workers; "
          f"incumbent per {args.incumbent}; cell: t_asha / t_random [90% bootstrap interval] (ASHA's mean best at budget)")
    header = ["budget (s)", "R", "t_random (s)", "random mean best"] + [f"r_min={r}, eta={e}" for r, e in settings]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for scale in args.budget_scale:
        budget = scale * default_budget(table)
        seeds = range(args.seeds)
        random = overrides_runner(["hpo=random"], table, space, args.workers, budget, args.incumbent,
                                  args.job_overhead, args.continue_overhead)
        random_runs = [random(s) for s in seeds]
        reference, t_random, _ = speedup_times(random_runs, random_runs, budget)
        cells = [f"{budget:g}", f"{reference:.4f}", f"{t_random:.0f}",
                 f"{np.mean([best_at(r.trace, budget) for r in random_runs]):.4f}"]
        for r_min, eta in settings:
            runner = overrides_runner(["hpo=asha", f"hpo.r_min={r_min}", f"hpo.eta={eta}"],
                                      table, space, args.workers, budget, args.incumbent, args.job_overhead,
                                      args.continue_overhead)
            runs = [runner(s) for s in seeds]
            _, _, t = speedup_times(random_runs, runs, budget)
            low, high = ratio_interval(random_runs, runs, budget)
            ratio = "never" if math.isinf(t) else f"{t / t_random:.2f} [{low:.2f}, {high:.2f}]"
            cells.append(f"{ratio} ({np.mean([best_at(r.trace, budget) for r in runs]):.4f})")
        print("| " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

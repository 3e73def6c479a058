"""How fast could a searcher that knew the good region be? Replays a table restricted to its top-K rows.

    python benchmarks/region_oracle.py --table benchmarks/tables/lenet_digits.jsonl --space lenet_digits --top 40,80

The "region" is the K rows with the lowest mean validation error over the second half of training (what a
model could learn from full runs, noise averaged out). Random search, ASHA and ASHA's stopping type with
r_min=2, eta=2 then run on those rows only, with the simulator, workers, budget and job overhead of
model_based.py, and the time to the *whole* table's top-1% target is printed (median over seeds, hit rate),
beside the same algorithms on the whole table. The gap between a learning searcher's time and the oracle's
is what better region finding could still win; the oracle is not an algorithm (it reads the table).

``--startup K1,K2`` adds the bound a *learning* searcher faces: it must see results before it can know
anything, so the oracle there first draws K rows of the whole table uniformly at random (a start-up), then
the region's rows in a random order, on the whole table and the same schedulers. With K = a model's
start-up (10 trials for our searchers' defaults on five parameters), the time printed is what a searcher
that learned the region *perfectly* from those K results would take. Its last column is the same for issue
10's full-fidelity criterion: full training's time to random search's median best at the budget, over random
search's time to it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import (Run, add_common_arguments, default_budget, half_time, load_table,  # noqa: E402
                     overrides_runner, speedup_times, time_ratio, time_to)
from hydra_hpo.searchers import SEARCHERS  # noqa: E402
from hydra_hpo.searchers.base import Searcher  # noqa: E402
from hydra_hpo.space import SearchSpace  # noqa: E402
from hydra_hpo.table import Table  # noqa: E402

ALGORITHMS = {"random": ["hpo=random"], "asha": ["hpo=asha"],
              "asha stopping r_min=2 eta=2": ["hpo=asha", "hpo.type=stopping", "hpo.r_min=2", "hpo.eta=2"]}


def errors(table: Table) -> np.ndarray:
    """The table's validation errors, a diverged epoch (NaN) as infinitely bad."""
    return np.nan_to_num(np.asarray(table.val_error, dtype=float), nan=np.inf)


def rows_reaching(table: Table, target: float) -> int:
    """How many rows reach ``target`` after some epoch."""
    return int((errors(table).min(1) <= target).sum())


def region_order(table: Table) -> np.ndarray:
    """Row indices, lowest mean validation error over the second half of their epochs first: the region's
    ranking."""
    return np.argsort(errors(table)[:, table.epochs // 2:].mean(1), kind="stable")


def top_rows(table: Table, k: int) -> Table:
    """The ``k`` rows with the lowest mean validation error over the second half of their epochs."""
    keep = region_order(table)[:k]
    return Table([table.configs[i] for i in keep], np.asarray(table.val_error)[keep],
                 np.asarray(table.elapsed)[keep])


def startup_oracle(table: Table, region: np.ndarray) -> type[Searcher]:
    """A searcher class (not an algorithm: it reads ``table``) whose first ``startup`` suggestions are rows
    of ``table`` drawn uniformly at random, and the following ones the rows ``region`` (indices) in a random
    order, then uniform rows again once those run out."""

    class StartupOracle(Searcher):
        def __init__(self, space: SearchSpace, seed: int = 0, initial_config: dict | None = None,
                     startup: int = 10) -> None:
            super().__init__(space, seed, initial_config)
            self._rng = np.random.default_rng(seed)
            self._left = list(self._rng.permutation(region))
            self._startup = startup

        def suggest(self) -> dict:
            if len(self.configs) < self._startup or not self._left:
                return dict(table.configs[self._rng.integers(len(table))])
            return dict(table.configs[self._left.pop()])

    return StartupOracle


def print_startup_rows(args: argparse.Namespace, table: Table, space: SearchSpace, target: float,
                       budget: float, random_runs: list[Run]) -> None:
    """The second table: the oracle after each ``--startup`` number of random trials, on the whole table; the
    last column is full training's time to random search's median best at the budget (issue 10's
    full-fidelity criterion) over random search's (``random_runs``: random search on the whole table)."""
    best, t_random, _ = speedup_times(random_runs, random_runs, budget)
    schedulers = [("full training" if name == "random" else name) for name in ALGORITHMS]
    print("\n| region | random start-up trials, then the region | " + " | ".join(schedulers)
          + f" | full training to {best:.4f} vs random search ({t_random:.1f} s) |\n"
          "|---|---|" + "---|" * (len(schedulers) + 1))
    order = region_order(table)
    for k in [int(k) for k in args.top.split(",")]:
        SEARCHERS["startup_oracle"] = startup_oracle(table, order[:k])
        try:
            for startup in [int(n) for n in args.startup.split(",")]:
                runs = {name: [overrides_runner(overrides + ["hpo.searcher=startup_oracle",
                                                             f"+hpo.searcher_options.startup={startup}"],
                                                table, space, args.workers, budget, args.incumbent,
                                                args.job_overhead, args.continue_overhead)(seed)
                               for seed in range(args.seeds)]
                        for name, overrides in ALGORITHMS.items()}
                cells = []
                for name_runs in runs.values():
                    times = [time_to(r.trace, target) for r in name_runs]
                    cells.append(f"{half_time(times):.1f} ({np.mean(np.isfinite(times)):.2f})")
                t_full = half_time([time_to(r.trace, best) for r in runs["random"]])
                cells.append(f"{time_ratio(t_full, t_random):.2f}")
                print(f"| top {k} of {len(table)} | {startup} | " + " | ".join(cells) + " |", flush=True)
        finally:
            del SEARCHERS["startup_oracle"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--top", default="40,80", help="comma-separated K: sizes of the region")
    parser.add_argument("--startup", default=None,
                        help="comma-separated K: also the oracle after K random start-up trials on the whole table")
    args = parser.parse_args(argv)
    logging.getLogger("hydra_hpo").setLevel(logging.ERROR)
    table, space = load_table(args)
    budget = default_budget(table)
    final = table.final_errors()
    target = float(np.quantile(final[np.isfinite(final)], 0.01))
    print(f"{args.table.name}: {args.seeds} seeds, {args.workers} workers, budget {budget:g} s, job overhead "
          f"{args.job_overhead:g} s ({args.continue_overhead:g} s continuing), top-1% target {target:.4f} "
          f"(reached at some epoch by {rows_reaching(table, target)} of {len(table)} rows)")
    print("| rows | reach the target | algorithm | median s to 1% | hit 1% |\n|---|---|---|---|---|")
    for k in [int(k) for k in args.top.split(",")] + [len(table)]:
        region = top_rows(table, k) if k < len(table) else table
        good = rows_reaching(region, target)
        for name, overrides in ALGORITHMS.items():
            run = overrides_runner(overrides, region, space, args.workers, budget, args.incumbent, args.job_overhead,
                                   args.continue_overhead)
            runs = [run(seed) for seed in range(args.seeds)]
            if k == len(table) and name == "random":
                whole_table_random = runs  # the start-up table's reference
            times = [time_to(r.trace, target) for r in runs]
            label = f"top {k}" if k < len(table) else f"all {k}"
            print(f"| {label} | {good} | {name} | {half_time(times):.1f} | {np.mean(np.isfinite(times)):.2f} |",
                  flush=True)
    if args.startup:
        print_startup_rows(args, table, space, target, budget, whole_table_random)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

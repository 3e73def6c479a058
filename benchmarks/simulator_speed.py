"""How fast the simulator replays a sweep: 1,000 random-search trials on a recorded table.

    python benchmarks/simulator_speed.py [--table benchmarks/tables/mlp_digits.jsonl] [--trials 1000]

Prints the wall-clock seconds of the whole sweep (searcher + scheduler + tuner + simulated executor, no
journal, no plots), the median of ``--repeats`` runs (target: under 5 s), then the same with the journal
written (not fsynced), and the time per job split into the table lookup and everything else.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from hydra_hpo.simulate import simulate
from hydra_hpo.space_structured import space_from_structured
from hydra_hpo.table import Table

REPO = Path(__file__).resolve().parents[1]
RANDOM = {"searcher": "random", "scheduler": "fifo"}


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=REPO / "benchmarks" / "tables" / "mlp_digits.jsonl")
    parser.add_argument("--space", type=Path, default=REPO / "conf" / "search_space" / "mlp.yaml")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    table = Table.load(args.table)
    space = space_from_structured(OmegaConf.to_container(OmegaConf.load(args.space)))

    def sweep(seed: int, output_dir: str | None = None):
        return simulate(RANDOM, space, table, n_workers=args.workers, seed=seed, n_trials=args.trials,
                        output_dir=output_dir)

    bare = [timed(lambda: sweep(seed)) for seed in range(args.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        journaled = [timed(lambda: sweep(seed, f"{tmp}/{seed}")) for seed in range(args.repeats)]
    outcome = sweep(0)
    n_jobs = len(outcome.extra["assignments"])

    # the lookup alone (nearest neighbour of each new configuration, as the executor does it)
    configs = [record.config for record in outcome.trials.values()]
    fresh = Table(table.configs, table.val_error, table.elapsed)
    lookup = timed(lambda: [fresh.lookup_index(c, space) for c in configs])

    median = statistics.median(bare)
    print(f"table {args.table}: {len(table)} rows, {table.epochs} epochs")
    print(f"{args.trials} random-search trials ({n_jobs} jobs), {args.workers} simulated workers, "
          f"{outcome.wallclock:.0f} simulated seconds")
    print(f"wall-clock, median of {args.repeats}: {median:.3f} s without journal "
          f"({'OK' if median < 5 else 'MISSES'} the 5 s target), {statistics.median(journaled):.3f} s with journal")
    print(f"per job: {1e3 * median / n_jobs:.3f} ms in total, of which table lookup {1e3 * lookup / n_jobs:.3f} ms; "
          f"searcher + scheduler + tuner + executor {1e3 * (median - lookup) / n_jobs:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

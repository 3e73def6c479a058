"""Several objectives on the recorded table: hypervolume against simulated time, random search vs. MO-ASHA.

    python benchmarks/compare_mo.py                  # 20 seeds, 4 simulated workers
    python benchmarks/compare_mo.py --seeds 50

Objectives: validation_error (min) and n_params (min). The committed table records no sizes, so each
row's n_params is computed here from its MLP configuration (64 inputs, num_layers hidden layers of
num_units, 10 outputs; checked against the real model on a few rows). Hypervolume uses a fixed reference
point, (validation_error 1.0, n_params 1.1 x the table's largest), and is reported as the fraction of that
box, from the tuner's results (a job's result counts when the job ends). All runs go through the real
tuner, searcher and scheduler on the simulated clock. Reported: each method's median final hypervolume
and the time its median hypervolume over seeds first reaches random search's final median
(issue 11's target for the best method: at most 1/3 of random search's time). Optuna NSGA-II / MOTPE rows
and a model-based multi-objective searcher of ours are not in this script yet.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # compare.py beside this script

from compare import add_common_arguments, compose, default_budget, load_table  # noqa: E402

from hydra_hpo.objectives import hypervolume, parse_objectives  # noqa: E402
from hydra_hpo.pareto import _entries  # noqa: E402
from hydra_hpo.simulate import simulate  # noqa: E402
from hydra_hpo.table import Table  # noqa: E402

OBJECTIVES = {"validation_error": "min", "n_params": "min"}
METHODS = {"random": ["hpo=random"], "mo-asha": ["hpo=asha"], "mo-hyperband": ["hpo=hyperband"], "motpe": ["hpo=tpe"]}


def mlp_params(config: dict) -> int:
    """Trainable parameters of hydra_hpo.training.models.MLP on digits (64 inputs, 10 classes)."""
    units, layers = int(config["model.num_units"]), int(config["model.num_layers"])
    return 64 * units + units + (layers - 1) * (units * units + units) + units * 10 + 10


def check_formula(table: Table) -> None:
    import torch

    from hydra_hpo.training.models import MLP

    for config in table.configs[:3]:
        model = MLP(num_layers=int(config["model.num_layers"]), num_units=int(config["model.num_units"]))
        model(torch.zeros(2, 1, 8, 8))
        counted = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if counted != mlp_params(config):
            raise SystemExit(f"n_params formula {mlp_params(config)} != the model's {counted} for {config}")


def with_sizes(table: Table) -> Table:
    extras = [{"n_params": mlp_params(c)} for c in table.configs]
    return Table(table.configs, table.val_error, table.elapsed, path=table.path, extras=extras)


def hv_curve(outcome, objectives, reference: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Hypervolume fraction of the reference box at each grid time."""
    box = float(np.prod(reference))
    values = []
    for t in grid:
        losses = [e.losses for e in _entries(outcome, objectives, until=t) if e.feasible]
        values.append(hypervolume(np.array(losses), reference) / box if losses else 0.0)
    return np.array(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--budget", type=float, default=None, help="simulated seconds (default as compare.py)")
    args = parser.parse_args(argv)
    logging.getLogger("hydra_hpo").setLevel(logging.ERROR)

    table, space = load_table(args)
    check_formula(table)
    table = with_sizes(table)
    budget = args.budget or default_budget(table)
    objectives = parse_objectives(OBJECTIVES, None)
    reference = np.array([1.0, 1.1 * max(mlp_params(c) for c in table.configs)])
    grid = np.linspace(0.0, budget, 101)[1:]
    curves: dict[str, np.ndarray] = {}
    for name, overrides in METHODS.items():
        hpo = {**compose(overrides)["hpo"], "objectives": OBJECTIVES}
        runs = []
        for seed in range(args.seeds):
            outcome = simulate(hpo, space, table, n_workers=args.workers, seed=seed, budget_seconds=budget,
                               n_trials=100_000, job_overhead_seconds=args.job_overhead)
            runs.append(hv_curve(outcome, objectives, reference, grid))
        curves[name] = np.median(np.array(runs), axis=0)
    target = curves["random"][-1]

    def time_to(curve: np.ndarray) -> float:
        reached = np.flatnonzero(curve >= target)
        return float(grid[reached[0]]) if len(reached) else float("inf")

    t_random = time_to(curves["random"])
    print(f"Table {args.table.name} ({len(table)} rows), {args.seeds} seeds, {args.workers} simulated workers, "
          f"budget {budget:g} s, job overhead {args.job_overhead} s; objectives {OBJECTIVES}; hypervolume as a "
          f"fraction of the box up to the reference (1.0, {reference[1]:.0f})")
    print("| method | median final hypervolume | time to random's final median (s) | ratio to random |\n"
          "|---|---|---|---|")
    for name, curve in curves.items():
        t = time_to(curve)
        ratio = "never" if not np.isfinite(t) else f"{t / t_random:.2f}"
        print(f"| {name} | {curve[-1]:.4f} | {t:.0f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

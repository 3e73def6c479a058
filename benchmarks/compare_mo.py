"""Several objectives on a recorded table: hypervolume against simulated time, ours and Optuna's.

    python benchmarks/compare_mo.py                  # 20 seeds, 4 simulated workers
    python benchmarks/compare_mo.py --seeds 50
    python benchmarks/compare_mo.py --table T.jsonl --objectives validation_error:min,inference_ms:min
    python benchmarks/compare_mo.py --methods random,mo-asha,optuna-nsga2 --seeds 50

Objectives (``--objectives``, ``name:min|max`` comma-separated): validation_error and n_params (both min) by
default. validation_error comes from the table's curves, train_seconds from its ``elapsed``, any other metric
from the table's per-row or per-epoch extras (see hydra_hpo.table). A table that records no n_params (the
committed mlp_digits.jsonl) gets each row's n_params computed from its MLP configuration (64 inputs,
num_layers hidden layers of num_units, 10 outputs; checked against the real model on a few rows).

Hypervolume uses a fixed reference point: validation_error 1.0; any other objective its worst value in the
table (over every row and epoch) plus a tenth of that value's size; it is reported as the fraction of the box
between the reference and the origin (or the table's best value, when that lies beyond the origin), from the
results a method has when a job ends. Ours (``METHODS``: random, MO-ASHA, MO-Hyperband, ``motpe`` = ``hpo=tpe``
with the objectives, i.e. MOTPE at full fidelity, and ``motpe-asha`` = ``hpo=motpe``, MOTPE in MO-ASHA) run
through the real tuner, searcher and scheduler on the simulated clock; Optuna's NSGA-II and multi-objective TPE (``optuna-nsga2``, ``optuna-motpe``, samplers
with Optuna's defaults; see peers.run_optuna_mo) run on the same table, lookup rule, workers and per-job
overhead, each trial one job at full fidelity told its objectives when it ends. Reported: each method's
median final hypervolume and the time its median hypervolume over seeds first reaches random search's final
median (issue 11's target for the best method: at most 1/3 of random search's time, and ahead of both
Optuna rows).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # compare.py and peers.py beside this script

import peers  # noqa: E402
from compare import add_common_arguments, compose, default_budget, load_table  # noqa: E402

from hydra_hpo.objectives import Objectives, hypervolume, parse_objectives  # noqa: E402
from hydra_hpo.pareto import _entries  # noqa: E402
from hydra_hpo.simulate import METRIC, simulate  # noqa: E402
from hydra_hpo.table import Table  # noqa: E402

OBJECTIVES = {"validation_error": "min", "n_params": "min"}
METHODS = {"random": ["hpo=random"], "mo-asha": ["hpo=asha"], "mo-hyperband": ["hpo=hyperband"], "motpe": ["hpo=tpe"],
           "motpe-asha": ["hpo=motpe"]}


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
    extras = [{**e, "n_params": mlp_params(c)} for e, c in zip(table.extras, table.configs)]
    return Table(table.configs, table.val_error, table.elapsed, path=table.path, extras=extras)


def parse_objectives_option(text: str) -> dict[str, str]:
    """``"validation_error:min,inference_ms:min"`` -> ``{"validation_error": "min", "inference_ms": "min"}``."""
    directions: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        name, _, direction = item.partition(":")
        if not name or direction not in ("min", "max"):
            raise ValueError(f"--objectives {text!r}: {item!r} must be NAME:min or NAME:max")
        if name in directions:
            raise ValueError(f"--objectives {text!r}: {name!r} is listed twice")
        directions[name] = direction
    return directions


def table_metrics(table: Table) -> list[str]:
    """The metrics every row of ``table`` carries (validation_error, train_seconds and the common extras)."""
    common = set(table.extras[0]).intersection(*(set(e) for e in table.extras[1:]))
    return [METRIC, "train_seconds", *sorted(common - {"train_seconds"})]


def prepare_table(table: Table, directions: dict[str, str]) -> Table:
    """``table`` with every objective available: n_params computed from the MLP configuration when the table
    lacks it; raises ValueError naming a metric the table does not record."""
    if "n_params" in directions and "n_params" not in table_metrics(table):
        if not all("model.num_units" in c and "model.num_layers" in c for c in table.configs):
            raise ValueError(f"--objectives: n_params is not recorded in {table.path} and its configurations are "
                             "not MLPs (model.num_units, model.num_layers) to count it from")
        check_formula(table)
        table = with_sizes(table)
    available = table_metrics(table)
    for name in directions:
        if name not in available:
            raise ValueError(f"--objectives: {name!r} is not recorded in {table.path}; it records "
                             f"{', '.join(available)}")
    return table


Metrics = Callable[[int, int], dict[str, float]]


def row_metrics(table: Table) -> Metrics:
    """``(row, epoch) -> metrics`` as our simulator reports them when a job ends at ``epoch``."""
    def metrics(row: int, epoch: int) -> dict[str, float]:
        return {**table.metrics_at(row, epoch), METRIC: float(table.val_error[row, epoch - 1])}

    return metrics


def reference_and_origin(table: Table, objectives: Objectives) -> tuple[np.ndarray, np.ndarray]:
    """The fixed reference point and the box's other corner, both in minimized form (see the module text)."""
    metrics = row_metrics(table)
    losses = np.array([objectives.point(metrics(row, epoch)).losses
                       for row in range(len(table)) for epoch in range(1, table.epochs + 1)])
    finite = np.where(np.isfinite(losses), losses, np.nan)
    worst, best = np.nanmax(finite, axis=0), np.nanmin(finite, axis=0)
    reference = worst + 0.1 * np.maximum(np.abs(worst), 1e-12)
    for j, (name, direction) in enumerate(objectives.directions.items()):
        if name == METRIC and direction == "min":
            reference[j] = 1.0
    return reference, np.minimum(best, 0.0)


def hv_fraction(losses: list, reference: np.ndarray, origin: np.ndarray) -> float:
    if not losses:
        return 0.0
    return hypervolume(np.array(losses), reference) / float(np.prod(reference - origin))


def our_curve(outcome, objectives: Objectives, reference: np.ndarray, origin: np.ndarray,
              grid: np.ndarray) -> np.ndarray:
    """Hypervolume fraction at each grid time from the tuner's results (each trial's latest ended job)."""
    return np.array([hv_fraction([e.losses for e in _entries(outcome, objectives, until=t) if e.feasible],
                                 reference, origin) for t in grid])


def peer_curve(results: list[tuple[float, dict[str, float]]], objectives: Objectives, reference: np.ndarray,
               origin: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Hypervolume fraction at each grid time from a peer's ended jobs ``(end, metrics)``."""
    points = [(t, objectives.point(m)) for t, m in results]
    return np.array([hv_fraction([p.losses for when, p in points if when <= t and p.feasible], reference, origin)
                     for t in grid])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--budget", type=float, default=None, help="simulated seconds (default as compare.py)")
    parser.add_argument("--objectives", default=",".join(f"{k}:{v}" for k, v in OBJECTIVES.items()),
                        help="NAME:min|max, comma-separated (default: %(default)s)")
    parser.add_argument("--methods", default=None,
                        help=f"comma-separated, from {', '.join([*METHODS, *peers.MO_OPTUNA_NAMES])}; "
                             "default: all available")
    args = parser.parse_args(argv)
    logging.getLogger("hydra_hpo").setLevel(logging.ERROR)

    try:
        directions = parse_objectives_option(args.objectives)
        table, space = load_table(args)
        table = prepare_table(table, directions)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    objectives = parse_objectives(directions, None)
    why_optuna = peers.optuna_available()
    available = list(METHODS) + (list(peers.MO_OPTUNA_NAMES) if why_optuna is None else [])
    chosen = args.methods.split(",") if args.methods else available
    for name in chosen:
        if name not in available:
            extra = f" ({why_optuna})" if name in peers.MO_OPTUNA_NAMES else ""
            print(f"--methods: {name!r} is not available{extra}; choose from {', '.join(available)}",
                  file=sys.stderr)
            return 2
    if "random" not in chosen:
        print("--methods: random is the reference of the comparison; include it", file=sys.stderr)
        return 2

    budget = args.budget or default_budget(table)
    reference, origin = reference_and_origin(table, objectives)
    metrics = row_metrics(table)
    grid = np.linspace(0.0, budget, 101)[1:]
    curves: dict[str, np.ndarray] = {}
    trials: dict[str, float] = {}
    for name in chosen:
        start = time.perf_counter()
        runs, counts = [], []
        for seed in range(args.seeds):
            if name in METHODS:
                hpo = {**compose(METHODS[name])["hpo"], "objectives": directions}
                outcome = simulate(hpo, space, table, n_workers=args.workers, seed=seed, budget_seconds=budget,
                                   n_trials=100_000, job_overhead_seconds=args.job_overhead,
                                   continue_overhead_seconds=args.continue_overhead)
                runs.append(our_curve(outcome, objectives, reference, origin, grid))
                counts.append(len(_entries(outcome, objectives, until=budget)))
            else:
                results = peers.run_optuna_mo(name, table, space, seed, args.workers, budget, directions, metrics,
                                              args.job_overhead)
                runs.append(peer_curve(results, objectives, reference, origin, grid))
                counts.append(len(results))
        curves[name] = np.median(np.array(runs), axis=0)
        trials[name] = float(np.mean(counts))
        print(f"  {name}: {args.seeds} seeds in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    target = curves["random"][-1]

    def time_to(curve: np.ndarray) -> float:
        reached = np.flatnonzero(curve >= target)
        return float(grid[reached[0]]) if len(reached) else float("inf")

    t_random = time_to(curves["random"])
    box = ", ".join(f"{n} {r:.4g}" for n, r in zip(objectives.names, reference))
    print(f"Table {args.table.name} ({len(table)} rows), {args.seeds} seeds, {args.workers} simulated workers, "
          f"budget {budget:g} s, job overhead {args.job_overhead} s; objectives {directions}; hypervolume as a "
          f"fraction of the box up to the reference ({box})")
    print("| method | trials with a result | median final hypervolume | time to random's final median (s) "
          "| ratio to random |\n|---|---|---|---|---|")
    for name, curve in curves.items():
        t = time_to(curve)
        ratio = "never" if not np.isfinite(t) else f"{t / t_random:.2f}"
        print(f"| {name} | {trials[name]:.0f} | {curve[-1]:.4f} | {'never' if not np.isfinite(t) else f'{t:.0f}'} "
              f"| {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How much can a searcher learn from a recorded table, and how much of it survives nearest-row replay?

    python benchmarks/table_signal.py --table benchmarks/tables/lenet_digits.jsonl --space lenet_digits

The simulator replays, for every configuration a searcher proposes, the recorded row nearest to it (unit-cube
distance over all parameters). A table of a few hundred random rows in five or six dimensions is sparse, so
the row can differ from the proposal in the parameter that matters. This prints, for the table's top-1% target
(the 1% quantile of its final errors; a "target row" reaches it after some epoch):

1. *learnable*: a Gaussian process (scikit-learn; Matern 5/2 with one length scale per feature, plus noise)
   fitted on ``n`` random rows' best errors (log) ranks the unseen rows; the share of target rows among its
   best ``--top`` against their share in the table. What a model could know from ``n`` full trainings, if it
   could pick rows; then the same from 40 rows' errors after ``--epochs`` (what a rung teaches).
2. *replay*: how far the replayed row lies from a random proposal in each parameter (unit scale: the
   parameter's range, log scale for log parameters; median and 90th percentile), and the share of target
   rows replayed for proposals drawn from the best 1% of the space by the mean of a GP fitted on *every* row
   (a proposer that knew all the table teaches; not an algorithm).
3. *found*: per algorithm (``--algorithms``, conf/hpo presets, simulated as model_based.py does), the median
   number of trials started before the first target row, and the distinct target rows among the first 60
   trials (mean over seeds). Target rows found per trial is what a learning searcher adds over random search;
   the rest of the time to the target is the scheduler's. Also the share of the workers' time before the target
   that went to rows that never reach it and trained to the last epoch.
4. *near misses*: rows whose best error lies within ``--near`` times the target without reaching it, and the
   mean error over the second half of the epochs of target rows and of near misses (min, median, max). When the
   two ranges overlap, which good row dips below the target at some epoch is mostly the luck of that epoch: a
   searcher can find good rows, and then has to train several of them to the end.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import add_common_arguments, default_budget, load_table, time_to  # noqa: E402
from hydra_hpo.simulate import compose, simulate  # noqa: E402
from hydra_hpo.space import SearchSpace  # noqa: E402
from hydra_hpo.table import Table  # noqa: E402
from region_oracle import errors  # noqa: E402

FIRST_TRIALS = 60  # trials counted for the distinct target rows an algorithm found
# proposals come from their own stream: record_table.py draws a table's rows from the sampler with small seeds,
# and proposals from the same stream would be the rows themselves
PROPOSAL_STREAM = 0x5245


def target_rows(table: Table) -> tuple[float, np.ndarray]:
    """``(target, mask)``: the 1% quantile of the final errors and the rows that reach it after some epoch."""
    final = table.final_errors()
    target = float(np.quantile(final[np.isfinite(final)], 0.01))
    return target, errors(table).min(1) <= target


def fit_gp(x: np.ndarray, y: np.ndarray):
    """A scikit-learn GP regression of ``y`` on ``x`` (Matern 5/2, a length scale per feature, noise)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel() * Matern(length_scale=np.ones(x.shape[1]), nu=2.5) + WhiteKernel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # length scales at their bounds on flat data
        return GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(x, y)


def features_and_losses(table: Table, space: SearchSpace, epoch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every row's unit-cube encoding and the log of its best error (``epoch``: its error after that epoch;
    a diverged one counts as error 1)."""
    table_errors = errors(table)
    loss = table_errors.min(1) if epoch is None else table_errors[:, epoch - 1]
    x = np.array([space.encode(config) for config in table.configs])
    return x, np.log(np.clip(np.where(np.isfinite(loss), loss, 1.0), 1e-4, None))


def learnable(table: Table, space: SearchSpace, sizes: list[int], top: int = 10, reps: int = 20,
              seed: int = 0, epoch: int | None = None) -> dict[int, float]:
    """Per ``n`` in ``sizes``: the mean share of target rows among the ``top`` unseen rows a GP fitted on
    ``n`` random rows' best errors (``epoch``: their errors after that epoch) ranks best (``reps`` draws)."""
    _, reach = target_rows(table)
    x, y = features_and_losses(table, space, epoch)
    rng = np.random.default_rng(seed)
    shares = {}
    for n in sizes:
        hits = []
        for _ in range(reps):
            seen = rng.choice(len(table), size=n, replace=False)
            unseen = np.setdiff1d(np.arange(len(table)), seen)
            ranked = unseen[np.argsort(fit_gp(x[seen], y[seen]).predict(x[unseen]), kind="stable")]
            hits.append(reach[ranked[:top]].mean())
        shares[n] = float(np.mean(hits))
    return shares


def replay_distances(table: Table, space: SearchSpace, n: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """Per parameter, ``|unit(proposal) - unit(replayed row)|`` for ``n`` random proposals."""
    rng = np.random.default_rng([seed, PROPOSAL_STREAM])
    proposals = [space.sample(rng) for _ in range(n)]
    gaps = np.array([np.abs(space.to_unit(c) - space.to_unit(table.configs[table.lookup_index(c, space)]))
                     for c in proposals])
    return {name: gaps[:, i] for i, name in enumerate(space.names)}


def informed_proposals(table: Table, space: SearchSpace, share: float = 0.01, n: int = 20000,
                       seed: int = 0) -> tuple[float, float]:
    """``(informed, random)``: the share of target rows replayed for proposals in the best ``share`` of the
    space by a GP fitted on every row, and for random proposals."""
    _, reach = target_rows(table)
    x, y = features_and_losses(table, space)
    rng = np.random.default_rng([seed, PROPOSAL_STREAM])
    proposals = [space.sample(rng) for _ in range(n)]
    mean = fit_gp(x, y).predict(np.array([space.encode(c) for c in proposals]))
    rows = np.array([table.lookup_index(c, space) for c in proposals])
    best = mean <= np.quantile(mean, share)
    return float(reach[rows[best]].mean()), float(reach[rows].mean())


def found(hpo: dict, table: Table, space: SearchSpace, seeds: int, workers: int, budget: float,
          job_overhead: float, continue_overhead: float) -> tuple[float, float, float]:
    """``(median trials before the first target row, mean distinct target rows in the first FIRST_TRIALS,
    share of the workers' busy time before the target spent on rows that never reach it and trained to the
    last epoch)`` of the sweep ``hpo`` (a seed that finds no target row counts as all its trials; one that never
    reaches the target, its whole budget)."""
    target, reach = target_rows(table)
    before, distinct = [], []
    spent_full, spent = 0.0, 0.0
    for seed in range(seeds):
        outcome = simulate(hpo, space, table, n_workers=workers, seed=seed, budget_seconds=budget,
                           n_trials=10**9, job_overhead_seconds=job_overhead,
                           continue_overhead_seconds=continue_overhead)
        started = sorted((r for r in outcome.trials.values() if r.segments),
                         key=lambda r: (r.segments[0].started, r.trial_id))
        rows = [table.lookup_index(r.config, space) for r in started]
        before.append(next((k for k, row in enumerate(rows) if reach[row]), len(rows)))
        distinct.append(len({row for row in rows[:FIRST_TRIALS] if reach[row]}))
        hit = time_to(outcome.extra["anytime_trace"], target)
        hit = budget if math.isinf(hit) else hit
        for record, row in zip(started, rows):
            busy = sum(max(0.0, min(s.finished, hit) - s.started) for s in record.segments)
            spent += busy
            if not reach[row] and record.resource >= table.epochs:
                spent_full += busy
    return float(np.median(before)), float(np.mean(distinct)), spent_full / spent if spent else 0.0


def near_misses(table: Table, factor: float) -> tuple[int, np.ndarray, np.ndarray]:
    """``(count, target rows' late errors, near misses' late errors)``: the rows whose best error is at most
    ``factor`` times the target without reaching it, and each group's mean error over the second half of the
    epochs (rows with a diverged epoch there left out)."""
    target, reach = target_rows(table)
    e = errors(table)
    near = ~reach & (e.min(1) <= factor * target)
    late = e[:, e.shape[1] // 2:].mean(1)
    return int(near.sum()), late[reach & np.isfinite(late)], late[near & np.isfinite(late)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--sizes", default="10,20,40,80", help="rows the GP learns from (part 1)")
    parser.add_argument("--top", type=int, default=10, help="unseen rows the GP picks (part 1)")
    parser.add_argument("--reps", type=int, default=20, help="random draws of the rows per size (part 1)")
    parser.add_argument("--epochs", default="2,8,20",
                        help="part 1 again on 40 rows' errors after these epochs (what a rung teaches; '' to skip)")
    parser.add_argument("--algorithms", default="random,tpe,gp,mobster_stopping",
                        help="conf/hpo presets for part 3 ('' to skip it)")
    parser.add_argument("--near", type=float, default=1.5, help="near misses: best error within this factor of the "
                        "target (part 4)")
    args = parser.parse_args(argv)
    logging.getLogger("hydra_hpo").setLevel(logging.ERROR)
    table, space = load_table(args)
    target, reach = target_rows(table)
    base = float(reach.mean())
    print(f"{args.table.name}: {len(table)} rows, {len(space)} parameters, top-1% target {target:.4f}, reached at "
          f"some epoch by {int(reach.sum())} rows ({base:.3f})")
    print(f"\n1. learnable: target rows among a GP's best {args.top} unseen rows ({args.reps} draws; base {base:.3f})")
    for n, share in learnable(table, space, [int(s) for s in args.sizes.split(",")], args.top, args.reps).items():
        print(f"   fitted on {n:4d} random rows: {share:.3f} ({share / base:.1f}x the base rate)")
    for epoch in [int(e) for e in args.epochs.split(",") if e]:
        share = learnable(table, space, [40], args.top, args.reps, epoch=epoch)[40]
        print(f"   fitted on   40 random rows' errors after epoch {epoch}: {share:.3f} ({share / base:.1f}x)")
    print("\n2. replay: |proposal - replayed row| per parameter, unit scale (median, 90th percentile)")
    for name, gaps in replay_distances(table, space).items():
        print(f"   {name:24s} {np.median(gaps):.3f} {np.quantile(gaps, 0.9):.3f}")
    informed, uniform = informed_proposals(table, space)
    print(f"   target rows replayed: proposals in the best 1% of the space by a GP of every row {informed:.3f}, "
          f"random proposals {uniform:.3f}")
    if args.algorithms:
        budget = default_budget(table)
        print(f"\n3. found ({args.seeds} seeds, {args.workers} workers, budget {budget:g} s, job overhead "
              f"{args.job_overhead:g} s, {args.continue_overhead:g} s continuing)")
        print(f"| algorithm | trials before the first target row (median) | distinct target rows in the first "
              f"{FIRST_TRIALS} trials (mean) | time before the target on other rows trained to the last epoch |"
              f"\n|---|---|---|---|")
        for name in args.algorithms.split(","):
            hpo = compose([f"hpo={name}"])["hpo"]
            first, distinct, full = found(hpo, table, space, args.seeds, args.workers, budget, args.job_overhead,
                                          args.continue_overhead)
            print(f"| {name} | {first:g} | {distinct:.2f} | {full:.2f} |")
    count, late_target, late_near = near_misses(table, args.near)
    print(f"\n4. near misses: {count} rows reach {args.near:g}x the target ({args.near * target:.4f}) and not the "
          "target; mean error over the second half of the epochs (min, median, max):")
    for name, late in (("target rows", late_target), ("near misses", late_near)):
        if len(late):
            print(f"   {name:12s} {late.min():.4f} {np.median(late):.4f} {late.max():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

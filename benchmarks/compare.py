"""Compare every algorithm (ours and peers) on a recorded table with the same simulated clock and budget.

    python benchmarks/compare.py --seeds 20 --workers 4
    python benchmarks/compare.py --quick                 # 3 seeds
    python benchmarks/compare.py --algorithms random,asha --seeds 50 --budget 300

Each algorithm runs once per seed for ``--budget`` simulated seconds on ``--workers`` simulated workers.
Ours go through the real tuner, searchers and schedulers (``hydra_hpo.simulate.simulate``) with the
settings of ``conf/hpo/<name>.yaml``; peers (Optuna, Syne Tune; see peers.py) see the same table, lookup
rule and clock. Definitions:

- target q%: the q% quantile of the table's final (last-epoch) validation errors, i.e. as good as the best
  q% of the recorded configurations after full training.
- time to target: the first simulated second at which the incumbent (best validation error after any
  epoch that has ended so far; the peers report every epoch, and ours are read off the simulated epochs,
  ``--incumbent job`` for our tuner's own incumbent, which hears of a job's epochs when it ends) is <= the
  target. "median" is the time by which half the seeds (ceil(n/2) of n)
  reached it; "-" when fewer than half did within the budget.
- hit rate: fraction of seeds that reached the target within the budget.
- best at budget: the incumbent at the budget, mean (and standard error) over seeds.
- trials: configurations started within the budget, mean over seeds.
- job overhead (``--job-overhead``, default: the measured joblib figure): simulated seconds every job costs
  before its first epoch. Ours run every segment (rung) as its own job, so a trial pays it once per segment;
  Optuna's and Syne Tune's trials run as one job each that reports every epoch, so they pay it once per trial
  (and Syne Tune once more per resume, which its stopping-type ASHA and BOHB never do).
- headline: R = random search's median best at the budget; time for ASHA to reach R as a fraction of
  the time random search needs to reach R (the same "median" as above). Target: <= 1/3. R moves in steps
  of the validation set's granularity and depends on the few best rows, so the ratio is noisy: each comes
  with a 90% bootstrap interval over seeds (both algorithms' seeds resampled, R recomputed), and ours are
  cheap enough to run with many seeds (``--seeds 100``).

Prints a markdown table and writes it to benchmarks/results/compare.md, with the median incumbent against
simulated time in benchmarks/results/compare.png.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # peers.py beside this script

import peers  # noqa: E402

from hydra_hpo.simulate import (  # noqa: E402
    DEFAULT_CONTINUE_OVERHEAD_SECONDS, DEFAULT_JOB_OVERHEAD_SECONDS, UNBOUNDED_TRIALS, compose, simulate,
)
from hydra_hpo.space import SearchSpace  # noqa: E402
from hydra_hpo.space_structured import space_from_structured  # noqa: E402
from hydra_hpo.table import Table  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# our algorithms: Hydra overrides of conf/simulate.yaml's hpo group
OURS: dict[str, list[str]] = {
    "random": ["hpo=random"],
    "sobol": ["hpo=sobol"],
    "successive_halving": ["hpo=successive_halving"],
    "hyperband": ["hpo=hyperband"],
    "asha": ["hpo=asha"],
    "asha_stopping": ["hpo=asha", "hpo.type=stopping"],
    "asha_d2l": ["hpo=asha", "hpo.r_min=2", "hpo.eta=2"],  # d2l 19.5's rungs (2, 4, 8, ...)
    "tpe": ["hpo=tpe"],
    "bohb": ["hpo=bohb"],
    "gp": ["hpo=gp"],
    "mobster": ["hpo=mobster"],
    "mobster_stopping": ["hpo=mobster_stopping"],
}
OPTUNA = peers.OPTUNA_NAMES
QUANTILES = (0.10, 0.05, 0.01)
INCUMBENTS = ("epoch", "job")
TRIALS_PER_WORKER = 30  # the automatic budget: random search gets about workers * this many trials


@dataclass
class Run:
    trace: list[tuple[float, float]]  # (simulated seconds, incumbent), up to the budget
    n_trials: int


Runner = Callable[[int], Run]


def best_at(trace: list[tuple[float, float]], when: float) -> float:
    best = math.inf
    for t, value in trace:
        if t > when:
            break
        best = value
    return best


def time_to(trace: list[tuple[float, float]], target: float) -> float:
    return next((t for t, value in trace if value <= target), math.inf)


def half_time(times: list[float]) -> float:
    """The time by which half the seeds (ceil(n/2)) got there; inf when fewer did."""
    ordered = sorted(times)
    return ordered[math.ceil(len(ordered) / 2) - 1]


def seconds_text(seconds: float) -> str:
    """A median time for the tables: 2 decimals below 10 s (a table with a 20 s budget has medians of a few
    seconds), 1 below 100 s, whole seconds above; "-" for never."""
    if math.isinf(seconds):
        return "-"
    return f"{seconds:.{2 if seconds < 10 else 1 if seconds < 100 else 0}f}"


def time_ratio(t_other: float, t_reference: float) -> float:
    """``t_other / t_reference`` of two median times; ``inf`` (never) counts as later than any time, so a
    reference that never got there gives 0 and an algorithm that never did gives ``inf``; NaN when neither did
    (no ratio)."""
    if math.isinf(t_other) and math.isinf(t_reference):
        return math.nan
    return t_other / t_reference


def interval_bounds(ratios: list[float], level: float = 0.9) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap ratios. A resample in which neither side got there (NaN)
    counts as ``inf``, against the algorithm: it widens the interval rather than vanishing from it (NaN would
    also break the sort)."""
    ordered = sorted(math.inf if math.isnan(r) else r for r in ratios)
    n = len(ordered)
    return ordered[int((1 - level) / 2 * (n - 1))], ordered[int(math.ceil((1 + level) / 2 * (n - 1)))]


def ratio_text(t_other: float, t_reference: float, low: float, high: float, budget: float) -> str:
    """A ratio of median times with its interval, for the tables. When one side never got there (its median
    is past the budget) the ratio is only bounded: ``< t_other / budget`` or ``> budget / t_reference``;
    ``-`` when neither got there."""
    ratio = time_ratio(t_other, t_reference)
    if math.isnan(ratio):
        return "-"
    interval = f"[{low:.2f}, {high:.2f}]"
    if math.isinf(t_reference):
        return f"< {t_other / budget:.2f} {interval}"
    if math.isinf(t_other):
        return f"> {budget / t_reference:.2f} {interval}"
    return f"{ratio:.2f} {interval}"


def speedup_times(reference: list[Run], other: list[Run], budget: float) -> tuple[float, float, float]:
    """``(R, t_reference, t_other)``: R is the reference's median best at the budget, the times are those by
    which half the seeds of each reached R."""
    target = float(np.median([best_at(r.trace, budget) for r in reference]))
    return (target, half_time([time_to(r.trace, target) for r in reference]),
            half_time([time_to(r.trace, target) for r in other]))


def ratio_interval(reference: list[Run], other: list[Run], budget: float, level: float = 0.9,
                   n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of ``t_other / t_reference`` (see ``speedup_times``), resampling the seeds of both
    with replacement; R is recomputed in each resample."""
    rng = np.random.default_rng(seed)
    bests = np.array([best_at(r.trace, budget) for r in reference])
    times: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    ratios = []
    for _ in range(n_boot):
        i = rng.integers(len(reference), size=len(reference))
        j = rng.integers(len(other), size=len(other))
        target = float(np.median(bests[i]))
        if target not in times:
            times[target] = (np.array([time_to(r.trace, target) for r in reference]),
                             np.array([time_to(r.trace, target) for r in other]))
        t_reference, t_other = times[target]
        ratios.append(time_ratio(half_time(list(t_other[j])), half_time(list(t_reference[i]))))
    return interval_bounds(ratios, level)


def overrides_runner(overrides: list[str], table: Table, space: SearchSpace, workers: int, budget: float,
                     incumbent: str = "epoch", job_overhead: float = 0.0,
                     continue_overhead: float = DEFAULT_CONTINUE_OVERHEAD_SECONDS) -> Runner:
    """``seed -> Run`` of our simulated sweep with these Hydra overrides of conf/simulate.yaml's hpo group.

    ``incumbent="epoch"``: the best error after any epoch ended so far (as the peers report, after every
    epoch); ``"job"``: the tuner's own incumbent, which learns a job's epochs when the job ends.
    ``job_overhead``: simulated seconds every job (segment) costs before its first epoch; ``continue_overhead``
    instead for a segment that continues its trial's waiting job process (``hpo.keep_alive``, on unless the
    overrides turn it off)."""
    if incumbent not in INCUMBENTS:
        raise ValueError(f"incumbent={incumbent!r}: choose from {', '.join(INCUMBENTS)}")
    hpo = compose(overrides)["hpo"]

    def run(seed: int) -> Run:
        outcome = simulate(hpo, space, table, n_workers=workers, seed=seed, budget_seconds=budget,
                           n_trials=UNBOUNDED_TRIALS, job_overhead_seconds=job_overhead,
                           continue_overhead_seconds=continue_overhead)
        started = sum(1 for r in outcome.trials.values() if r.segments and r.segments[0].started < budget)
        trace = outcome.extra["anytime_trace"] if incumbent == "epoch" else outcome.incumbent_trace
        return Run([(t, v) for t, v in trace if t <= budget], started)

    return run


def peer_runner(name: str, table: Table, space: SearchSpace, workers: int, budget: float,
                job_overhead: float = 0.0) -> Runner:
    """``seed -> Run`` of a peer; ``job_overhead`` is charged on every job the peer starts (see peers.py)."""
    function = peers.run_optuna if name in OPTUNA else peers.run_syne_tune

    def run(seed: int) -> Run:
        trace, n_trials = function(name, table, space, seed, workers, budget, job_overhead)
        return Run(trace, n_trials)

    return run


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The table, space, seeds, workers and incumbent options (shared with asha_sensitivity.py)."""
    parser.add_argument("--table", type=Path, default=REPO / "benchmarks" / "tables" / "mlp_digits.jsonl")
    parser.add_argument("--space", default="mlp", help="a conf/search_space option")
    parser.add_argument("--rows", type=int, default=None, help="use only the table's first N rows")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--incumbent", choices=INCUMBENTS, default="epoch",
                        help="ours: best after any epoch ended (as the peers report; default), or the tuner's "
                             "incumbent, which hears of a job's epochs when the job ends")
    parser.add_argument("--job-overhead", type=float, default=DEFAULT_JOB_OVERHEAD_SECONDS,
                        help="simulated seconds every job costs before its first epoch, ours (one per segment) and "
                             "the peers' (one per trial they start); default: the joblib figure of "
                             f"benchmarks/segment_overhead.py, {DEFAULT_JOB_OVERHEAD_SECONDS} s; 0 for none")
    parser.add_argument("--continue-overhead", type=float, default=DEFAULT_CONTINUE_OVERHEAD_SECONDS,
                        help="ours: simulated seconds a segment costs instead when it continues its trial's waiting "
                             "job process (hpo.keep_alive); default: benchmarks/segment_overhead.py's figure, "
                             f"{DEFAULT_CONTINUE_OVERHEAD_SECONDS} s (at most --job-overhead); --continue-overhead equal "
                             "to --job-overhead prices every segment as a new job, as before keep-alive")


def load_table(args: argparse.Namespace) -> tuple[Table, SearchSpace]:
    """The table of ``--table`` (its first ``--rows`` rows) and the search space of ``--space``."""
    table = Table.load(args.table)
    table = table.head(args.rows) if args.rows else table
    return table, space_from_structured(compose([f"search_space={args.space}"])["search_space"])


def default_budget(table: Table) -> float:
    """``TRIALS_PER_WORKER`` mean full trainings, rounded to 10 simulated seconds."""
    return round(TRIALS_PER_WORKER * float(np.mean(table.elapsed[:, -1])), -1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--peer-seeds", type=int, default=None,
                        help="seeds of the peers (default: --seeds); per seed on mlp_digits (shared 2-core machine): Optuna's GP "
                             "sampler about 2 minutes, TPE about 10 s")
    parser.add_argument("--budget", type=float, default=None,
                        help=f"simulated seconds; default: {TRIALS_PER_WORKER} mean full trainings per worker")
    parser.add_argument("--algorithms", default=None, help="comma-separated; default: all available")
    parser.add_argument("--quick", action="store_true", help="3 seeds")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--our-overrides", default="",
                        help="space-separated hpo overrides added to each of ours, e.g. 'hpo.rank_by=last' (the rule "
                             "of figures measured before hpo.rank_by existed)")
    args = parser.parse_args(argv)
    seeds = 3 if args.quick else args.seeds
    peer_seeds = seeds if args.peer_seeds is None else (min(3, args.peer_seeds) if args.quick else args.peer_seeds)
    logging.getLogger("hydra_hpo").setLevel(logging.ERROR)  # one "budget reached" warning per run

    table, space = load_table(args)
    final = table.final_errors()
    final = final[np.isfinite(final)]
    full_time = float(np.mean(table.elapsed[:, -1]))
    budget = args.budget or default_budget(table)
    targets = {q: float(np.quantile(final, q)) for q in QUANTILES}

    notes: list[str] = []
    available = list(OURS)
    why_optuna = peers.optuna_available()
    if why_optuna is None:
        available += list(OPTUNA)
    else:
        notes.append(f"Optuna rows are missing: {why_optuna}")
    why_syne = peers.syne_tune_available()
    if why_syne is None:
        available += list(peers.SYNE_TUNE_NAMES)
    else:
        notes.append(f"Syne Tune rows are missing: {why_syne}")
    chosen = args.algorithms.split(",") if args.algorithms else available
    for name in chosen:
        if name not in available:
            print(f"--algorithms: {name!r} is not available; choose from {', '.join(available)}", file=sys.stderr)
            return 2

    header = [
        f"Table {args.table.name}: {len(table)} configurations x {table.epochs} epochs, "
        f"mean full training {full_time:.2f} s, best final error {final.min():.4f}",
        f"{seeds} seeds ({peer_seeds} for peers), {args.workers} simulated workers, budget {budget:g} simulated seconds "
        f"(~{budget * args.workers / full_time:.0f} full trainings); our incumbent: per {args.incumbent}; "
        f"job overhead {args.job_overhead:g} s per job ({args.continue_overhead:g} s continuing a waiting job)",
        "Targets (quantiles of the table's final errors): "
        + ", ".join(f"{int(q * 100)}% = {t:.4f}" for q, t in targets.items()),
    ]
    for line in header + notes:
        print(line)

    runs: dict[str, list[Run]] = {}
    seconds: dict[str, float] = {}
    for name in chosen:
        runner = (overrides_runner(OURS[name] + args.our_overrides.split(), table, space, args.workers, budget,
                                   args.incumbent, args.job_overhead, args.continue_overhead)
                  if name in OURS else peer_runner(name, table, space, args.workers, budget, args.job_overhead))
        start = time.perf_counter()
        n_seeds = seeds if name in OURS else peer_seeds
        runs[name] = [runner(seed) for seed in range(n_seeds)]
        seconds[name] = time.perf_counter() - start
        print(f"  {name}: {n_seeds} seeds in {seconds[name]:.1f} s", flush=True)

    lines = header + notes + [""] + markdown_table(runs, targets, budget)
    headline = headline_ratio(runs, budget)
    if headline:
        lines += ["", headline]
    text = "\n".join(lines)
    print()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/compare.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out / "compare.md").write_text(f"<!-- {command.strip()} -->\n" + text + "\n")
    plot(runs, budget, targets, args.out / "compare.png")
    print(f"\nwrote {args.out / 'compare.md'} and {args.out / 'compare.png'}")
    return 0


def markdown_table(runs: dict[str, list[Run]], targets: dict[float, float], budget: float) -> list[str]:
    columns = ["algorithm", "seeds", "trials"]
    for q in targets:
        columns += [f"median s to {int(q * 100)}%", f"hit {int(q * 100)}%"]
    columns += ["best at budget (mean ± se)"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for name, seed_runs in runs.items():
        cells = [name, str(len(seed_runs)), f"{np.mean([r.n_trials for r in seed_runs]):.0f}"]
        for target in targets.values():
            times = [time_to(r.trace, target) for r in seed_runs]
            median = half_time(times)
            cells += [seconds_text(median),
                      f"{np.mean([math.isfinite(t) for t in times]):.2f}"]
        bests = np.array([best_at(r.trace, budget) for r in seed_runs])
        se = bests.std(ddof=1) / math.sqrt(len(bests)) if len(bests) > 1 else 0.0
        cells.append(f"{bests.mean():.4f} ± {se:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def headline_ratio(runs: dict[str, list[Run]], budget: float) -> str | None:
    if "random" not in runs or "asha" not in runs:
        return None
    reference, t_random, _ = speedup_times(runs["random"], runs["random"], budget)
    lines = [f"Headline: random search's median best at the budget is R = {reference:.4f}; "
             f"random search reaches R at {t_random:.0f} s (half the seeds). Ratios with a 90% bootstrap "
             "interval over seeds:"]
    for name in [n for n in runs if n != "random"]:
        _, _, t = speedup_times(runs["random"], runs[name], budget)
        ratio = time_ratio(t, t_random)
        low, high = ratio_interval(runs["random"], runs[name], budget)
        verdict = ("meets" if ratio <= 1 / 3 else "misses") + " the <= 1/3 target" if name == "asha" else ""
        lines.append(f"- {name} reaches R at {'never (within budget)' if math.isinf(t) else f'{t:.0f} s'}: "
                     f"{ratio_text(t, t_random, low, high, budget)} of random search's time {verdict}".rstrip())
    return "\n".join(lines)


def plot(runs: dict[str, list[Run]], budget: float, targets: dict[float, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.geomspace(budget / 1000, budget, 300)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, seed_runs) in enumerate(runs.items()):
        values = np.array([[best_at(r.trace, t) for t in grid] for r in seed_runs])
        median = np.median(values, axis=0)
        median[~np.isfinite(median)] = np.nan
        style = "-" if name in OURS else "--"
        ax.plot(grid, median, style, label=name, color=f"C{i % 10}")
    for q, target in targets.items():
        ax.axhline(target, color="grey", lw=0.6, ls=":")
        ax.text(budget, target, f" {int(q * 100)}%", va="center", fontsize=7, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("simulated seconds (log scale)")
    ax.set_ylabel("median best validation error so far")
    ax.set_title("Incumbent, median over seeds")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())

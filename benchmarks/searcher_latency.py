"""Decision latency of the searchers: median and 95th percentile of one ``ask`` (a ``suggest``).

    python benchmarks/searcher_latency.py                       # tpe, 100/300/1000 observations
    python benchmarks/searcher_latency.py --searchers random,tpe --repeats 200
    python benchmarks/searcher_latency.py --searchers tpe,gp,mobster --clock cpu   # on a busy machine

The searcher is fed ``n`` finished trials (a synthetic loss on the mlp search space) with 4 trials pending
(4 workers busy); then each timed ``ask`` starts one more trial, and the oldest pending trial reports, so
the model always sees ``n`` (slowly growing) results and 4 pending configurations.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hydra_hpo.searchers import build_searcher
from hydra_hpo.simulate import compose
from hydra_hpo.space import SearchSpace
from hydra_hpo.space_structured import space_from_structured


def synthetic_loss(space: SearchSpace, config: dict) -> float:
    """A smooth loss with its optimum inside the unit cube (the values do not matter for the timing)."""
    u = space.to_unit(config)
    return float(np.sum((u - 0.3) ** 2))


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def latencies(name: str, space: SearchSpace, n_observations: int, repeats: int, pending: int = 4,
              seed: int = 0, clock: str = "wall") -> np.ndarray:
    """Seconds per ``ask`` of ``repeats`` asks after ``n_observations`` results, ``pending`` trials running;
    ``clock="cpu"``: this process's CPU seconds, which a busy machine's other processes do not inflate."""
    now = CLOCKS[clock]
    searcher = build_searcher(name, space, seed=seed)
    trial_id = 0
    for trial_id in range(n_observations + pending):
        searcher.ask(trial_id)
        if trial_id < n_observations:
            searcher.observe(trial_id, 1, synthetic_loss(space, searcher.configs[trial_id]))
    seconds = []
    for _ in range(repeats):
        trial_id += 1
        start = now()
        searcher.ask(trial_id)
        seconds.append(now() - start)
        oldest = searcher.pending[0]
        searcher.observe(oldest, 1, synthetic_loss(space, searcher.configs[oldest]))
    return np.array(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--searchers", default="tpe")
    parser.add_argument("--space", default="mlp", help="a conf/search_space option")
    parser.add_argument("--observations", default="100,300,1000")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time (on a shared, busy machine)")
    args = parser.parse_args(argv)
    space = space_from_structured(compose([f"search_space={args.space}"])["search_space"])
    print(f"| searcher | observations | median ms | p95 ms |  ({len(space)} parameters, 4 pending, "
          f"{args.repeats} asks each, {args.clock} clock)")
    print("|---|---|---|---|")
    for name in args.searchers.split(","):
        for n in (int(v) for v in args.observations.split(",")):
            ms = 1000 * latencies(name, space, n, args.repeats, clock=args.clock)
            print(f"| {name} | {n} | {np.median(ms):.2f} | {np.percentile(ms, 95):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

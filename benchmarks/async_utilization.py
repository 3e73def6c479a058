"""Worker utilization of the asynchronous executor against blocking batches, on real launchers.

Runs the test stub (tests/stub_app/stub.py: no training, each job sleeps a given time) as a sweep of
``--trials`` jobs on ``--workers`` workers with unequal job lengths (1.5, 0.5, 1.0, 0.5 s, cycled), once
with ``hpo.executor=async`` (the default on these launchers) and once with ``hpo.executor=batch``, and
prints each sweep's worker utilization (busy job-seconds / (n_workers * wall-clock seconds), from its
optimization_results.yaml), the median over ``--repeats`` alternating runs, and their difference.

    python benchmarks/async_utilization.py [--launcher joblib|submitit_local] [--trials 12] [--repeats 3]

A speed figure: it depends on the machine and its load (job start-up eats into utilization), so the
tests assert only what holds at any speed (tests/test_launchers.py: jobs overlap across a finished job).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
STUB = REPO / "tests" / "stub_app" / "stub.py"
LAUNCHERS = {
    "joblib": ["hydra/launcher=joblib"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"],
}


def utilization(launcher: str, executor: str, trials: int, workers: int, where: Path) -> float:
    extra = [f"hydra.launcher.n_jobs={workers}"] if launcher == "joblib" else []
    cmd = [sys.executable, str(STUB), "-m", f"hydra.sweep.dir={where}", *LAUNCHERS[launcher], *extra,
           f"hpo.n_workers={workers}", f"hpo.n_trials={trials}", "sleep=[1.5,0.5,1.0,0.5]", f"hpo.executor={executor}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return float(OmegaConf.load(where / "optimization_results.yaml").worker_utilization)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launcher", choices=sorted(LAUNCHERS), default="joblib")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    runs: dict[str, list[float]] = {"async": [], "batch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for executor in runs:  # alternate, so both see the same machine load
                value = utilization(args.launcher, executor, args.trials, args.workers,
                                    Path(tmp) / f"{executor}{repeat}")
                runs[executor].append(value)
                print(f"{args.launcher} {executor} run {repeat}: utilization={value:.3f}", flush=True)
    medians = {executor: statistics.median(values) for executor, values in runs.items()}
    print(f"{args.launcher}, {args.workers} workers, {args.trials} jobs, median of {args.repeats}: "
          f"async={medians['async']:.3f} batch={medians['batch']:.3f} "
          f"difference={medians['async'] - medians['batch']:+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

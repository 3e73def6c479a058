"""ASHA against random search at the same wall-clock budget on real digits sweeps (median over seeds).

    python benchmarks/asha_vs_random_real.py --seeds 5 --budget 60

Each sweep is a real `python train.py -m` run (MLP on digits, search_space=mlp, joblib launcher with
2 workers), stopped from starting new jobs after --budget seconds. For every sweep we read the
journal and take the best validation error among jobs finished within the budget. Printed: a
markdown table with the median (and min/max) over seeds per algorithm, then `asha_vs_random=<x>`,
the ratio of ASHA's median best error to random search's (lower is better for ASHA).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = {
    "random": ["hpo=random"],
    "asha": ["hpo=asha"],
}


def best_within(journal: Path, budget: float) -> tuple[float, int]:
    """Best completed value among jobs finished by ``budget`` seconds, and how many trials started."""
    best, trials = float("inf"), 0
    for line in journal.read_text().splitlines():
        event = json.loads(line)
        if event["event"] == "trial_started":
            trials += 1
        if event["event"] == "segment_finished" and event["status"] == "completed" and event["finished"] <= budget:
            if event["value"] is not None:
                best = min(best, float(event["value"]))
    return best, trials


def run(algorithm: str, seed: int, budget: float, workers: int, epochs: int, workdir: Path,
        extra: tuple[str, ...] = ()) -> dict:
    sweep = workdir / f"{algorithm}-{seed}"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *ALGORITHMS[algorithm], *extra, "model=mlp", "search_space=mlp",
           f"trainer.max_epochs={epochs}", "trainer.accelerator=cpu", f"hpo.seed={seed}", "hpo.n_trials=1000",
           f"hpo.n_workers={workers}", f"hpo.budget_seconds={budget}", "hydra/launcher=joblib",
           f"hydra.launcher.n_jobs={workers}", f"hydra.sweep.dir={sweep}"]
    start = time.time()
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=workdir)
    best, trials = best_within(sweep / "journal.jsonl", budget)
    return {"best": best, "trials": trials, "seconds": time.time() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0, help="wall-clock seconds per sweep")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10, help="r_max: trainer.max_epochs")
    parser.add_argument("--asha-args", default="", help="more Hydra overrides for the asha sweeps, "
                        "space-separated, e.g. 'hpo.r_min=2 hpo.eta=2'")
    args = parser.parse_args()
    extra = {"random": (), "asha": tuple(args.asha_args.split())}
    rows: dict[str, list[dict]] = {name: [] for name in ALGORITHMS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for name in ALGORITHMS:  # interleaved, so machine noise hits both alike
                rows[name].append(run(name, seed, args.budget, args.workers, args.epochs, Path(tmp), extra[name]))
                print(f"seed {seed} {name}: best {rows[name][-1]['best']:.4f} "
                      f"({rows[name][-1]['trials']} trials)", flush=True)
    print("\n| algorithm | median best val. error | min | max | median trials | seeds |")
    print("|---|---|---|---|---|---|")
    medians = {}
    for name, results in rows.items():
        bests = [r["best"] for r in results]
        medians[name] = statistics.median(bests)
        print(f"| {name} | {medians[name]:.4f} | {min(bests):.4f} | {max(bests):.4f} | "
              f"{statistics.median(r['trials'] for r in results):.0f} | {len(results)} |")
    print(f"budget={args.budget:.0f}s workers={args.workers} r_max={args.epochs} asha: hpo=asha {args.asha_args}")
    print(f"asha_vs_random={medians['asha'] / medians['random']:.3f}")


if __name__ == "__main__":
    main()

"""Population based training against ASHA and random search at the same wall-clock budget on real digits sweeps,
and PBT's retrained schedule against the best fixed configuration retrained the same way (medians over seeds).

    python benchmarks/pbt_vs_asha_real.py --seeds 5 --budget 60

Each sweep is a real `python train.py -m` run (MLP on digits, search_space=mlp, joblib launcher, --workers
workers), stopped from starting new jobs after --budget seconds (PBT also ends when its whole population reached
trainer.max_epochs). Per sweep: the best validation error among jobs finished within the budget (from the
journal). Then each sweep's best_config.yaml is retrained from scratch (`--config-path <sweep> --config-name
best_config`: PBT's follows its hyperparameter schedule) and its validation error is read from result.json.
Printed: one markdown table (median, min, max over seeds) and the ratios pbt_vs_asha, pbt_vs_random and
pbt_schedule_vs_best_fixed (below 1: PBT is better).
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

from asha_vs_random_real import best_within

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = {
    "random": ["hpo=random", "hpo.n_trials=1000"],
    "asha": ["hpo=asha", "hpo.n_trials=1000"],
    "pbt": ["hpo=pbt"],
}


def retrain(sweep: Path, workdir: Path) -> float:
    """Validation error of the sweep's best_config.yaml trained again from scratch."""
    out = workdir / f"{sweep.name}-retrain"
    subprocess.run([sys.executable, str(ROOT / "train.py"), "--config-path", str(sweep), "--config-name", "best_config",
                    f"hydra.run.dir={out}"], check=True, capture_output=True, text=True, cwd=workdir)
    return float(json.loads((out / "result.json").read_text())["value"])


def run(algorithm: str, seed: int, args: argparse.Namespace, workdir: Path) -> dict:
    sweep = workdir / f"{algorithm}-{seed}"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", *ALGORITHMS[algorithm], *args.extra.split(), "model=mlp",
           "search_space=mlp", f"trainer.max_epochs={args.epochs}", "trainer.accelerator=cpu", f"hpo.seed={seed}",
           f"hpo.n_workers={args.workers}", f"hpo.budget_seconds={args.budget}", "hydra/launcher=joblib",
           f"hydra.launcher.n_jobs={args.workers}", f"hydra.sweep.dir={sweep}"]
    start = time.time()
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=workdir)
    best, trials = best_within(sweep / "journal.jsonl", args.budget)
    return {"best": best, "trials": trials, "seconds": time.time() - start, "retrained": retrain(sweep, workdir)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0, help="wall-clock seconds per sweep")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10, help="trainer.max_epochs (ASHA's r_max)")
    parser.add_argument("--extra", default="", help="more Hydra overrides for every sweep, space-separated")
    args = parser.parse_args()
    rows: dict[str, list[dict]] = {name: [] for name in ALGORITHMS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for name in ALGORITHMS:  # interleaved, so machine noise hits all alike
                rows[name].append(run(name, seed, args, Path(tmp)))
                r = rows[name][-1]
                print(f"seed {seed} {name}: best {r['best']:.4f} retrained {r['retrained']:.4f} "
                      f"({r['trials']} trials, {r['seconds']:.0f} s)", flush=True)
    print("\n| algorithm | median best val. error | min | max | median retrained | median trials | seeds |")
    print("|---|---|---|---|---|---|---|")
    medians, retrained = {}, {}
    for name, results in rows.items():
        bests = [r["best"] for r in results]
        medians[name] = statistics.median(bests)
        retrained[name] = statistics.median(r["retrained"] for r in results)
        print(f"| {name} | {medians[name]:.4f} | {min(bests):.4f} | {max(bests):.4f} | {retrained[name]:.4f} | "
              f"{statistics.median(r['trials'] for r in results):.0f} | {len(results)} |")
    fixed = min(retrained["asha"], retrained["random"])
    print(f"budget={args.budget:.0f}s workers={args.workers} epochs={args.epochs} extra={args.extra!r}")
    print(f"pbt_vs_asha={medians['pbt'] / medians['asha']:.3f} pbt_vs_random={medians['pbt'] / medians['random']:.3f} "
          f"pbt_schedule_vs_best_fixed={retrained['pbt'] / fixed:.3f}")


if __name__ == "__main__":
    main()

"""What the live progress line and the live Optuna study (hpo.optuna_storage) cost the sweeper per result.

    python benchmarks/progress_optuna_overhead.py [--trials 200] [--repeats 3]

Runs the same simulated ASHA sweep on the committed mlp_digits table (no training: the sweeper's own
work is all there is) without callbacks, with the progress bar (to an in-memory stream), with progress
log lines, and with a live Optuna study in a journal file and in SQLite; prints the median wall-clock
seconds per job result of each and the added milliseconds per result over the baseline measured in the
same run. Also times one offline export (python -m hydra_hpo.export_optuna) of the sweep.
"""

from __future__ import annotations

import argparse
import io
import logging
import statistics
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

from hydra_hpo.build import build_tuner
from hydra_hpo.executors.simulator import SimulatedExecutor
from hydra_hpo.export_optuna import LiveOptunaExport, export
from hydra_hpo.journal import Journal
from hydra_hpo.progress import SweepProgress
from hydra_hpo.settings import HPOSettings
from hydra_hpo.space_structured import space_from_structured
from hydra_hpo.table import Table

REPO = Path(__file__).resolve().parents[1]


def run(kind: str, trials: int, folder: Path) -> tuple[float, int]:
    table = Table.load(REPO / "benchmarks/tables/mlp_digits.jsonl")
    space = space_from_structured(OmegaConf.to_container(OmegaConf.load(REPO / "conf/search_space/mlp.yaml")))
    settings = HPOSettings.from_mapping({"searcher": "random", "scheduler": "asha", "n_trials": trials,
                                         "n_workers": 4, "r_min": 1, "eta": 3, "r_max": 18})
    callbacks = []
    progress = None
    if kind == "bar":
        progress = SweepProgress("bar", stream=io.StringIO())
    elif kind == "log":
        progress = SweepProgress("log")
    elif kind.startswith("optuna"):
        storage = str(folder / "optuna.log") if kind == "optuna-journal" else f"sqlite:///{folder / 'optuna.db'}"
        callbacks.append(LiveOptunaExport(storage, folder, space, "min", "validation_error"))
    if progress is not None:
        callbacks.append(progress)
    fingerprint = {**settings.fingerprint(), "search_space": space.to_structured(), "metric": "validation_error"}
    tuner = build_tuner(settings, space, 18, SimulatedExecutor(table, space, 4, metric="validation_error"),
                        journal=Journal(folder / "journal.jsonl", durable=False), fingerprint=fingerprint,
                        callbacks=callbacks)
    start = time.perf_counter()
    if progress is not None:
        with progress:
            tuner.run()
    else:
        tuner.run()
    seconds = time.perf_counter() - start
    results = sum(len(r.segments) for r in tuner.trials.values())
    return seconds, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("hydra_hpo.progress").setLevel(logging.WARNING)  # format the lines, do not print them
    kinds = ["none", "bar", "log", "optuna-journal", "optuna-sqlite"]
    per_result: dict[str, float] = {}
    exports = []
    for kind in kinds:
        samples = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                seconds, results = run(kind, args.trials, Path(tmp))
                samples.append(seconds / results)
                if kind == "none":
                    start = time.perf_counter()
                    export(tmp, str(Path(tmp) / "export.log"))
                    exports.append(time.perf_counter() - start)
        per_result[kind] = statistics.median(samples)
    print(f"simulated ASHA, {args.trials} trials, 4 workers, r_max 18, {results} job results; "
          f"median of {args.repeats} runs")
    print(f"{'callbacks':<16}{'ms/result':>10}{'added ms/result':>17}")
    for kind in kinds:
        print(f"{kind:<16}{per_result[kind] * 1e3:>10.3f}{(per_result[kind] - per_result['none']) * 1e3:>17.3f}")
    print(f"offline export of the sweep (journal file storage): median {statistics.median(exports):.2f} s")


if __name__ == "__main__":
    main()

"""Sweep summary files: trials.csv, optimization_results.yaml, and the plots."""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

from hydra_hpo.atomic import atomic_write_text
from hydra_hpo.records import best_epoch
from hydra_hpo.tuner import SweepOutcome

TRIALS_CSV = "trials.csv"
RESULTS_YAML = "optimization_results.yaml"
INCUMBENT_PNG = "incumbent.png"
CURVES_PNG = "curves.png"


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.10g}"
    return "" if value is None else value


def curve_best(curve: list[float | None], mode: str = "min") -> tuple[float, int] | None:
    """``(value, epoch)``: the best finite metric in a per-epoch ``curve`` (epochs count from 1; ties go to
    the later epoch, as the incumbent's), or ``None`` when no epoch has a finite value."""
    return best_epoch(enumerate(curve, 1), 1.0 if mode == "min" else -1.0)


def trials_table(outcome: SweepOutcome, mode: str = "min") -> str:
    """CSV text: one row per trial with its parameters, status, metric (at its last epoch, and its best
    over the epochs it trained, ``mode`` deciding which is best), epochs and seconds."""
    param_names: list[str] = []
    for record in outcome.trials.values():
        for name in record.config:
            if name not in param_names:
                param_names.append(name)
    from hydra_hpo.lineage import changing_keys, has_lineage, lineage_text

    # population based training: each trial's segments with their values and the trial each copied from
    lineage = changing_keys(outcome.trials) if has_lineage(outcome.trials) else None
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial_id", *param_names, "status", "value", "best_value", "best_epoch", "epochs", "seconds",
                     "overhead_seconds", "started", "finished", "jobs", "seed", "error",
                     *(["lineage"] if lineage is not None else [])])
    for trial_id in sorted(outcome.trials):
        record = outcome.trials[trial_id]
        started = min((s.started for s in record.segments), default=None)
        finished = max((s.finished for s in record.segments), default=None)
        best = curve_best(record.curve, mode)
        writer.writerow([
            trial_id, *[_fmt(record.config.get(name)) for name in param_names], record.status,
            _fmt(record.value), *((_fmt(best[0]), best[1]) if best else ("", "")), record.resource,
            _fmt(record.seconds), _fmt(record.overhead_seconds),
            _fmt(started), _fmt(finished),
            " ".join(str(s.job_idx) for s in record.segments), record.seed,
            record.error.strip().splitlines()[0] if record.error else "",
            *([lineage_text(record, lineage)] if lineage is not None else []),
        ])
    return buffer.getvalue()


def time_split(outcome: SweepOutcome) -> dict[str, Any]:
    """Busy job-seconds split into training and overhead, in total and per job.

    A job's busy time runs from its launch to its result as the executor saw them; its training time is
    the seconds its epochs took (as the job reported them); the rest is overhead (launch, job set-up,
    checkpoint restore and saves, teardown, result hand-over).
    """
    segments = [s for record in outcome.trials.values() for s in record.segments]
    overheads = sorted(s.overhead_seconds for s in segments)
    n = len(segments)
    median = (overheads[(n - 1) // 2] + overheads[n // 2]) / 2 if n else 0.0
    busy = sum(s.busy_seconds for s in segments)
    train = sum(min(s.seconds, s.busy_seconds) for s in segments)
    return {
        "n_jobs": n,
        "busy_seconds": round(busy, 3),
        "train_seconds": round(train, 3),
        "overhead_seconds": round(busy - train, 3),
        "overhead_seconds_per_job": round((busy - train) / n, 4) if n else 0.0,
        "overhead_seconds_per_job_median": round(median, 4),
    }


def summary_dict(outcome: SweepOutcome, metric: str, mode: str, name: str = "hydra-hpo") -> dict:
    """The content of optimization_results.yaml (hydra-optuna-sweeper's key names where they exist)."""
    best = outcome.best
    best_params = None
    if best:  # the config the best result was trained with (population based training changes it per segment)
        record = outcome.trials[best.trial_id]
        during = [s.config for s in record.segments if s.config and s.previous_resource < best.resource <= s.resource]
        best_params = dict(during[-1] if during else record.config)
    return {
        "name": name,
        "metric": metric,
        "mode": mode,
        "best_params": best_params,
        "best_value": best.value if best else None,
        "best_trial": best.trial_id if best else None,
        "best_epochs": best.resource if best else None,
        "n_trials": len(outcome.trials),
        "n_failures": outcome.failures,
        # how the trials ended: completed (to r_max), stopped (culled at a rung), paused, or a failure status
        "trial_statuses": dict(sorted(Counter(r.status for r in outcome.trials.values()).items())),
        "epochs_total": outcome.epochs_total,
        "wallclock_seconds": round(outcome.wallclock, 3),
        "worker_utilization": round(outcome.utilization, 4),
        "n_workers": outcome.n_workers,
        **time_split(outcome),
        "stop_reason": outcome.stop_reason,
        **outcome.extra,
    }


def write_summary(outcome: SweepOutcome, sweep_dir: str | os.PathLike, metric: str, mode: str,
                  plots: bool = True) -> dict:
    """Write trials.csv, optimization_results.yaml and (optionally) the plots into ``sweep_dir``."""
    from omegaconf import OmegaConf

    sweep_dir = Path(sweep_dir)
    summary = summary_dict(outcome, metric, mode)
    if outcome.objectives is not None:  # several objectives or constraints: the front and its hypervolume
        from hydra_hpo.pareto import write_pareto

        summary.update(write_pareto(outcome, sweep_dir, plots=plots))
    atomic_write_text(sweep_dir / TRIALS_CSV, trials_table(outcome, mode))
    atomic_write_text(sweep_dir / RESULTS_YAML, OmegaConf.to_yaml(OmegaConf.create(summary)))
    if plots:
        from hydra_hpo.plots import plot_curves, plot_incumbent

        plot_incumbent(outcome, sweep_dir / INCUMBENT_PNG, metric)
        plot_curves(outcome, sweep_dir / CURVES_PNG, metric)
    return summary

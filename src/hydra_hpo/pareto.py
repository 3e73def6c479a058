"""What a sweep with several objectives writes: the Pareto front (CSV, plot) and hypervolume against time.

A trial counts with its latest completed result (its highest epochs), as MO-ASHA reports its front;
only feasible trials are in the front and in the hypervolume.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hydra_hpo.atomic import atomic_write_text
from hydra_hpo.objectives import Objectives, hypervolume, pareto_front
from hydra_hpo.trial import COMPLETED
from hydra_hpo.tuner import SweepOutcome

PARETO_CSV = "pareto_front.csv"
PARETO_PNG = "pareto.png"
PARETO_DIR = "pareto"


@dataclass
class Entry:
    """One trial's latest completed result with every metric the sweep needs."""

    trial_id: int
    epochs: int
    finished: float
    values: list[float]       # the objectives' raw values
    losses: np.ndarray        # minimized
    feasible: bool


def _entries(outcome: SweepOutcome, objectives: Objectives, until: float = math.inf) -> list[Entry]:
    entries = []
    for trial_id, record in sorted(outcome.trials.items()):
        done = [s for s in record.segments if s.status == COMPLETED and s.finished <= until
                and s.value is not None and math.isfinite(s.value) and not objectives.missing(s.metrics)]
        if not done:
            continue
        last = max(done, key=lambda s: (s.resource, s.finished))
        point = objectives.point(last.metrics)
        entries.append(Entry(trial_id, last.resource, last.finished, objectives.values(last.metrics),
                             np.array(point.losses), point.feasible))
    return entries


def front(outcome: SweepOutcome, objectives: Objectives) -> list[Entry]:
    """The non-dominated feasible trials, ordered by the first objective."""
    feasible = [e for e in _entries(outcome, objectives) if e.feasible]
    if not feasible:
        return []
    members = [feasible[i] for i in pareto_front(np.array([e.losses for e in feasible]))]
    return sorted(members, key=lambda e: (e.losses[0], e.trial_id))


def reference_point(outcome: SweepOutcome, objectives: Objectives) -> list[float] | None:
    """The hypervolume's reference (in minimized form): the worst feasible value of each objective over the
    sweep's final results plus a tenth of its range (or of its size, when every trial has the same value)."""
    losses = np.array([e.losses for e in _entries(outcome, objectives) if e.feasible])
    if len(losses) == 0:
        return None
    worst, best = losses.max(axis=0), losses.min(axis=0)
    span = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1e-12))
    return (worst + 0.1 * span).tolist()


def hypervolume_trace(outcome: SweepOutcome, objectives: Objectives,
                      reference: list[float]) -> list[tuple[float, float]]:
    """(clock, hypervolume of the feasible trials' latest results) after every completed job."""
    times = sorted({s.finished for r in outcome.trials.values() for s in r.segments if s.status == COMPLETED})
    trace = []
    for t in times:
        losses = [e.losses for e in _entries(outcome, objectives, until=t) if e.feasible]
        volume = hypervolume(np.array(losses), reference) if losses else 0.0
        if not trace or volume != trace[-1][1]:
            trace.append((float(t), float(volume)))
    return trace


def front_csv(entries: list[Entry], outcome: SweepOutcome, objectives: Objectives) -> str:
    """CSV text: one row per front member with its objectives, epochs and parameters."""
    params: list[str] = []
    for e in entries:
        params.extend(k for k in outcome.trials[e.trial_id].config if k not in params)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial_id", *objectives.names, "epochs", *params])
    for e in entries:
        config = outcome.trials[e.trial_id].config
        writer.writerow([e.trial_id, *(f"{v:.10g}" for v in e.values), e.epochs,
                         *("" if config.get(k) is None else config.get(k) for k in params)])
    return buffer.getvalue()


def plot_pareto(outcome: SweepOutcome, objectives: Objectives, path: str | os.PathLike) -> None:
    """Every trial's latest result (infeasible ones as crosses), the front highlighted: a scatter for two
    objectives, pairwise panels for more."""
    from hydra_hpo.plots import _figure

    plt = _figure()
    entries = _entries(outcome, objectives)
    members = {e.trial_id for e in front(outcome, objectives)}
    names = objectives.names
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        groups = [("trials", "C0", "o", [e for e in entries if e.feasible and e.trial_id not in members]),
                  ("infeasible", "C7", "x", [e for e in entries if not e.feasible]),
                  ("Pareto front", "C3", "o", sorted((e for e in entries if e.trial_id in members),
                                                     key=lambda e: e.values[i]))]
        for label, color, marker, group in groups:
            if group:
                ax.plot([e.values[i] for e in group], [e.values[j] for e in group], marker, color=color,
                        markersize=6 if label == "Pareto front" else 4, label=label,
                        linestyle="-" if label == "Pareto front" and len(names) == 2 else "none")
        for k, axis in ((i, "x"), (j, "y")):  # latency and size span decades: a log axis shows the front
            values = [e.values[k] for e in entries]
            if values and min(values) > 0 and max(values) / min(values) > 50:
                getattr(ax, f"set_{axis}scale")("log")
        ax.set_xlabel(f"{names[i]} ({objectives.directions[names[i]]})")
        ax.set_ylabel(f"{names[j]} ({objectives.directions[names[j]]})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{len(members)} non-dominated of {len(entries)} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_pareto(outcome: SweepOutcome, sweep_dir: str | os.PathLike, plots: bool = True) -> dict[str, Any]:
    """Write pareto_front.csv (and pareto.png) for a sweep with several objectives; returns the summary's
    entries (the front, the hypervolume, its reference and its trace), or {} for a single objective."""
    objectives = outcome.objectives
    if objectives is None:
        return {}
    summary: dict[str, Any] = {"objectives": dict(objectives.directions),
                               "constraints": {k: dict(v) for k, v in objectives.constraints.items()},
                               "n_infeasible": sum(not e.feasible for e in _entries(outcome, objectives))}
    if not objectives.multi:
        return summary
    sweep_dir = Path(sweep_dir)
    members = front(outcome, objectives)
    atomic_write_text(sweep_dir / PARETO_CSV, front_csv(members, outcome, objectives))
    summary["pareto_front"] = [
        {"trial_id": e.trial_id, "epochs": e.epochs, "values": dict(zip(objectives.names, e.values)),
         "params": dict(outcome.trials[e.trial_id].config)} for e in members]
    reference = reference_point(outcome, objectives)
    if reference is not None:
        trace = hypervolume_trace(outcome, objectives, reference)
        summary["hypervolume_reference"] = [float(r) for r in reference]  # minimized form: max objectives negated
        summary["hypervolume"] = trace[-1][1] if trace else 0.0
        summary["hypervolume_trace"] = [[round(t, 3), v] for t, v in trace]
    if plots:
        plot_pareto(outcome, objectives, sweep_dir / PARETO_PNG)
    return summary

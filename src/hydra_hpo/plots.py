"""The sweep's plots: incumbent against wall-clock time, and every trial's learning curve."""

from __future__ import annotations

import math
import os

from hydra_hpo.tuner import SweepOutcome
from hydra_hpo.trial import COMPLETED


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_incumbent(outcome: SweepOutcome, path: str | os.PathLike, metric: str) -> None:
    """Best metric so far against cumulative wall-clock seconds since the sweep began."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    trace = outcome.incumbent_trace
    if trace:  # nothing is known before the first result; hold the last best until the sweep ended
        times = [t for t, _ in trace] + [max(outcome.wallclock, trace[-1][0])]
        values = [v for _, v in trace] + [trace[-1][1]]
        ax.step(times, values, where="post", color="C0")
        ax.plot([t for t, _ in trace], [v for _, v in trace], "o", color="C0", markersize=3)
        ax.set_xlim(left=0.0)
    ax.set_xlabel("wall-clock time since sweep start (s)")
    ax.set_ylabel(f"best {metric} so far")
    ax.set_title("Incumbent")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_curves(outcome: SweepOutcome, path: str | os.PathLike, metric: str) -> None:
    """Each trial's per-epoch curve; o marks where a segment ended and the trial was promoted, x where it stopped."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    for trial_id in sorted(outcome.trials):
        record = outcome.trials[trial_id]
        curve = record.curve
        if not curve:
            continue
        epochs = list(range(1, len(curve) + 1))
        line, = ax.plot(epochs, curve, lw=1, alpha=0.7)
        ends = [s.resource for s in record.segments if s.status == COMPLETED and s.resource <= len(curve)]
        for i, end in enumerate(ends):
            promoted = i < len(ends) - 1
            y = curve[end - 1]
            if math.isfinite(y):
                ax.plot([end], [y], "o" if promoted else "x", color=line.get_color(), markersize=4)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title("Learning curves (o: promoted, x: stopped)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""Value types shared by schedulers, tuner and executors: a job (one segment of a trial) and its result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# Statuses a job result can have.
COMPLETED = "completed"
FAILED = "failed"  # the job raised
DIVERGED = "diverged"  # the metric came back NaN or inf
KILLED = "killed"  # the job process died (signal, out of memory)
TIMEOUT = "timeout"  # the job ran past hpo.trial_timeout
INTERRUPTED = "interrupted"  # the sweep was stopped (Ctrl-C) while the job ran
# the job found its configuration unusable for any trial (metric not logged, dataset missing): the sweep stops
CONFIG_ERROR = "config_error"
FAILURE_STATUSES = (FAILED, DIVERGED, KILLED, TIMEOUT, INTERRUPTED, CONFIG_ERROR)

# How a trial whose last job completed ended; the scheduler says which (Scheduler.trial_status).
# COMPLETED: trained to the full resource (r_max).
STOPPED = "stopped"  # culled at a rung: not among the best there
PAUSED = "paused"  # could still have continued (e.g. waiting for an ASHA promotion) when the sweep ended


@dataclass(frozen=True)
class Job:
    """One segment of a trial: train ``config`` from ``previous_resource`` up to ``resource`` epochs.

    ``job_idx`` and ``seed`` are filled in by the tuner (``-1`` / ``0`` when created by a scheduler).

    ``source_trial`` (population based training): the job starts from *that* trial's checkpoint at
    ``previous_resource`` epochs, which the checkpoint store copies into this trial's own directory before
    the job starts. ``config`` is this segment's configuration; ``set_params`` names the keys of ``config``
    (optimizer hyperparameters: ``lr``, ``momentum``, ``weight_decay``) that the job writes into the
    optimizer's param_groups after restoring (restoring an optimizer brings back its old values).
    """

    trial_id: int
    config: dict[str, Any]
    resource: int
    previous_resource: int = 0
    job_idx: int = -1
    seed: int = 0
    source_trial: int | None = None
    set_params: tuple[str, ...] = ()

    @property
    def epochs(self) -> int:
        """Epochs this segment trains."""
        return self.resource - self.previous_resource


@dataclass
class JobResult:
    """What a finished job reported.

    ``value`` is the raw metric at ``job.resource`` (``None`` when the job failed); ``curve`` is the
    trial's whole per-epoch metric curve so far (it continues across segments). ``started`` and
    ``finished`` are executor clock readings (wall-clock or simulated seconds since the sweep began).
    """

    job: Job
    status: str
    value: float | None = None
    curve: list[float] = field(default_factory=list)
    seconds: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    error: str | None = None
    output_dir: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    # with several objectives or constraints: the rank key (hydra_hpo.objectives.Point) schedulers rank by
    point: tuple | None = None

    @property
    def ok(self) -> bool:
        """True when the job completed with a finite metric value."""
        return self.status == COMPLETED and self.value is not None and math.isfinite(self.value)


def trial_seed(sweep_seed: int, trial_id: int) -> int:
    """The seed of trial ``trial_id``: derived from the sweep seed, stable across runs and platforms."""
    import numpy as np

    return int(np.random.SeedSequence([int(sweep_seed), int(trial_id)]).generate_state(1)[0])

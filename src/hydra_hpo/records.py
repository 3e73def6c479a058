"""Per-trial bookkeeping built from job results: what the summary, table and plots show."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hydra_hpo.trial import COMPLETED, FAILURE_STATUSES, JobResult


def best_epoch(epochs: Iterable[tuple[int, float | None]], sign: float = 1.0) -> tuple[float, int] | None:
    """``(value, epoch)``: the best finite value of ``(epoch, value)`` pairs (``sign`` 1: the smallest, -1:
    the largest), or ``None`` when none is finite. Ties go to the **later** epoch, whose checkpoint then holds
    the best value; the incumbent, trials.csv and the summary all use this rule."""
    finite = [(sign * float(value), -epoch) for epoch, value in epochs if value is not None and math.isfinite(value)]
    if not finite:
        return None
    value, epoch = min(finite)
    return sign * value, -epoch


@dataclass
class Segment:
    """One finished job of a trial."""

    job_idx: int
    previous_resource: int
    resource: int
    status: str
    value: float | None
    seconds: float
    started: float
    finished: float
    error: str | None = None
    output_dir: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] | None = None  # this segment's configuration (population based training changes it)
    source_trial: int | None = None  # the trial whose checkpoint this segment started from (PBT's exploit)

    @property
    def busy_seconds(self) -> float:
        """Seconds the job held its worker: from its launch to its result, as the executor saw them."""
        return max(0.0, self.finished - self.started)

    @property
    def overhead_seconds(self) -> float:
        """Busy seconds that were not training epochs (``seconds``): job start-up, checkpoints, teardown."""
        return max(0.0, self.busy_seconds - self.seconds)


@dataclass
class TrialRecord:
    """Everything known about one trial (configuration)."""

    trial_id: int
    config: dict[str, Any]
    seed: int
    # running | completed (to r_max) | stopped (culled at a rung) | paused (could have continued when the
    # sweep ended) | a failure status (failed, diverged, killed, timeout, interrupted); see Tuner._trial_status
    status: str = "running"
    segments: list[Segment] = field(default_factory=list)
    curve: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def value(self) -> float | None:
        """The metric at the highest resource the trial reached successfully (None if it never did)."""
        for segment in reversed(self.segments):
            if segment.status == COMPLETED and segment.value is not None and math.isfinite(segment.value):
                return segment.value
        return None

    @property
    def resource(self) -> int:
        """Epochs the trial completed."""
        done = [s.resource for s in self.segments if s.status == COMPLETED]
        return max(done, default=0)

    @property
    def seconds(self) -> float:
        """Training seconds over the trial's jobs (their epochs, each with its validation)."""
        return sum(s.seconds for s in self.segments)

    @property
    def busy_seconds(self) -> float:
        return sum(s.busy_seconds for s in self.segments)

    @property
    def overhead_seconds(self) -> float:
        return sum(s.overhead_seconds for s in self.segments)

    @property
    def failed(self) -> bool:
        return self.status in FAILURE_STATUSES

    def add(self, result: JobResult) -> None:
        job = result.job
        self.segments.append(
            Segment(
                job_idx=job.job_idx,
                previous_resource=job.previous_resource,
                resource=job.resource,
                status=result.status,
                value=result.value,
                seconds=result.seconds,
                started=result.started,
                finished=result.finished,
                error=result.error,
                output_dir=result.output_dir,
                metrics=dict(result.metrics),
                config=dict(job.config),
                source_trial=job.source_trial,
            )
        )
        if result.curve:
            self.curve = list(result.curve)
        if result.error:
            self.error = result.error

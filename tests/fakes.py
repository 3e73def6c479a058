"""Test doubles: a deterministic in-memory executor with a fake clock (no Hydra, no training)."""

from __future__ import annotations

import heapq
from typing import Callable

from hydra_hpo.executors.base import Executor
from hydra_hpo.trial import COMPLETED, Job, JobResult

# job -> (status, value, seconds per epoch) or (status, value, seconds per epoch, curve): the curve holds
# the metric after each epoch 1..job.resource (flat at ``value`` when not given)
Outcome = Callable[[Job], tuple]


def quadratic(job: Job) -> tuple[str, float | None, float]:
    """A loss that improves with epochs and is best near x = 0.3."""
    x = float(job.config["x"])
    return COMPLETED, (x - 0.3) ** 2 + 1.0 / job.resource, 1.0


class FakeExecutor(Executor):
    """Runs jobs on ``n_workers`` fake workers: a job takes ``epochs * seconds_per_epoch`` fake seconds."""

    def __init__(self, n_workers: int, outcome: Outcome = quadratic, crash_after: int | None = None) -> None:
        super().__init__(n_workers)
        self.outcome = outcome
        self.now = 0.0
        self.heap: list[tuple[float, int, JobResult]] = []
        self.submitted: list[Job] = []
        self.crash_after = crash_after  # raise SystemExit after this many results, like a killed sweep
        self.returned = 0

    def submit(self, job: Job) -> None:
        self.submitted.append(job)
        status, value, per_epoch, *rest = self.outcome(job)
        duration = per_epoch * job.epochs
        curve = list(rest[0]) if rest else [value] * job.resource if value is not None else []
        result = JobResult(job=job, status=status, value=value, curve=curve, seconds=duration,
                           started=self.now, finished=self.now + duration,
                           error=None if status == COMPLETED else f"{status} on purpose")
        heapq.heappush(self.heap, (self.now + duration, job.job_idx, result))

    def wait(self) -> list[JobResult]:
        if self.crash_after is not None and self.returned >= self.crash_after:
            raise SystemExit("killed")
        finished, _, result = heapq.heappop(self.heap)
        self.now = finished
        self.returned += 1
        return [result]

    def num_running(self) -> int:
        return len(self.heap)

    def clock(self) -> float:
        return self.now


def best_found(searcher, loss, n: int) -> float:
    """The lowest ``loss(config)`` among ``n`` trials asked of ``searcher``, each observed at resource 1."""
    values = []
    for trial_id in range(n):
        searcher.ask(trial_id)
        values.append(loss(searcher.configs[trial_id]))
        searcher.observe(trial_id, 1, values[-1])
    return min(values)

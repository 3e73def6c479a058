"""An executor that replays recorded learning curves on a simulated clock.

Jobs "run" on ``n_workers`` simulated workers: a job that trains a configuration from
``previous_resource`` to ``resource`` epochs takes ``elapsed[resource-1] - elapsed[previous_resource-1]``
simulated seconds of the configuration's table row (a promoted trial resumes from its checkpoint, so it
pays only the extra epochs) plus ``job_overhead_seconds`` before its first epoch (a real job's start-up:
launch, Hydra job set-up, Trainer, checkpoint restore and saves), and reports ``val_error[resource-1]``. Nothing sleeps: ``wait`` jumps the
clock to the next finish, so hours of tuning replay in seconds through the same tuner, scheduler and
searcher code as a real sweep.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import NamedTuple

from hydra_hpo.executors.base import Executor
from hydra_hpo.space import SearchSpace
from hydra_hpo.table import Table
from hydra_hpo.trial import COMPLETED, INTERRUPTED, Job, JobResult


class Assignment(NamedTuple):
    """Where and when a job ran (simulated seconds)."""

    job_idx: int
    trial_id: int
    worker: int
    start: float
    finish: float


@dataclass(order=True)
class _Running:
    finish: float
    job_idx: int
    worker: int
    start: float
    row: int
    job: Job
    overhead: float


class SimulatedExecutor(Executor):
    """Replays ``table`` for configurations of ``space`` on ``n_workers`` simulated workers.

    ``submit`` puts a job on the lowest-numbered free worker; ``wait`` advances the clock to the earliest
    finish (ties broken by ``job_idx``) and returns every job finishing at exactly that time.
    ``assignments`` lists where and when each job ran, in submission order; ``epoch_results`` the
    simulated time at which each epoch of a finished job ended and its validation error.
    Every job holds its worker ``job_overhead_seconds`` before its first epoch starts; its result's
    ``seconds`` are the training seconds alone. With ``keep_alive`` a job that continues the process of its
    trial's segment that ended at the last ``wait`` (same epoch, no ``source_trial``/``set_params``) holds it
    ``continue_overhead_seconds`` instead (at most ``job_overhead_seconds``); a job that starts a process ends
    the waiting ones.
    """

    def __init__(self, table: Table, space: SearchSpace, n_workers: int, metric: str = "validation_error",
                 job_overhead_seconds: float = 0.0, keep_alive: bool = False,
                 continue_overhead_seconds: float = 0.0) -> None:
        super().__init__(n_workers)
        if not float(continue_overhead_seconds) >= 0:
            raise ValueError(f"continue_overhead_seconds={continue_overhead_seconds!r}: must be >= 0 seconds")
        if not float(job_overhead_seconds) >= 0:
            raise ValueError(f"job_overhead_seconds={job_overhead_seconds!r}: must be >= 0 seconds")
        self.job_overhead = float(job_overhead_seconds)
        self.keep_alive = keep_alive
        self.continue_overhead = min(float(continue_overhead_seconds), self.job_overhead)  # never more than a new job
        self._parked: dict[int, int] = {}  # trial -> epoch its job process waits at (keep_alive)
        self.n_continued = 0  # jobs that continued a waiting process instead of starting one
        self.table = table
        self.space = space
        self.metric = metric
        self.now = 0.0
        self.assignments: list[Assignment] = []
        self.epoch_results: list[tuple[float, float]] = []  # (when the epoch ended, its error)
        self._free = list(range(n_workers))  # a heap: the lowest-numbered free worker first
        self._running: list[_Running] = []  # a heap ordered by (finish, job_idx)

    def submit(self, job: Job) -> None:
        if not self._free:
            raise RuntimeError(f"submit: all {self.n_workers} simulated workers are busy")
        if not 0 <= job.previous_resource < job.resource:
            raise ValueError(
                f"job {job.job_idx} of trial {job.trial_id}: cannot train from epoch {job.previous_resource} "
                f"to {job.resource}"
            )
        if job.resource > self.table.epochs:
            raise ValueError(
                f"job {job.job_idx} of trial {job.trial_id} asks for resource {job.resource} epochs, but the table "
                f"records only E={self.table.epochs}: set hpo.r_max <= {self.table.epochs}"
            )
        row = self.table.lookup_index(job.config, self.space)
        elapsed = self.table.elapsed[row]
        duration = float(elapsed[job.resource - 1]) - (
            float(elapsed[job.previous_resource - 1]) if job.previous_resource > 0 else 0.0
        )
        worker = heapq.heappop(self._free)
        overhead = self.job_overhead
        if self.keep_alive:
            if self._parked.get(job.trial_id) == job.previous_resource and job.source_trial is None \
                    and not job.set_params:
                overhead = self.continue_overhead
                self.n_continued += 1
                del self._parked[job.trial_id]
            else:  # a new process starts: the waiting ones end first (never more processes than workers)
                self._parked.clear()
        finish = self.now + overhead + duration
        heapq.heappush(self._running, _Running(finish, job.job_idx, worker, self.now, row, job, overhead))
        self.assignments.append(Assignment(job.job_idx, job.trial_id, worker, self.now, finish))

    def wait(self) -> list[JobResult]:
        if not self._running:
            raise RuntimeError("wait: no simulated job is running")
        self._parked.clear()  # processes no submit continued since the last wait have ended
        first = heapq.heappop(self._running)
        done = [first]
        while self._running and self._running[0].finish == first.finish:
            done.append(heapq.heappop(self._running))
        self.now = first.finish
        results = []
        for running in done:
            heapq.heappush(self._free, running.worker)
            job = running.job
            if self.keep_alive:
                self._parked[job.trial_id] = job.resource
            curve = self.table.val_error[running.row, : job.resource].tolist()
            value = curve[-1]
            self._record_epochs(running)
            results.append(
                JobResult(
                    job=job, status=COMPLETED, value=value, curve=curve,
                    seconds=running.finish - running.start - running.overhead,
                    started=running.start, finished=running.finish,
                    metrics={**self.table.metrics_at(running.row, job.resource), self.metric: value},
                )
            )
        return results

    def _record_epochs(self, running: _Running) -> None:
        elapsed = self.table.elapsed[running.row]
        job = running.job
        offset = float(elapsed[job.previous_resource - 1]) if job.previous_resource > 0 else 0.0
        for epoch in range(job.previous_resource, job.resource):
            self.epoch_results.append((running.start + running.overhead + float(elapsed[epoch]) - offset,
                                       float(self.table.val_error[running.row, epoch])))

    def anytime_trace(self) -> list[tuple[float, float]]:
        """The best error after any epoch that had ended by then: ``(time, best)`` at each improvement.

        The tuner learns a job's curve when the job ends; this is what the training achieved as it went
        (as a tuner that hears of every epoch, like Syne Tune's or Optuna's, records it). NaN is skipped.
        """
        trace: list[tuple[float, float]] = []
        for when, value in sorted(self.epoch_results):
            if value == value and (not trace or value < trace[-1][1]):
                trace.append((when, value))
        return trace

    def num_running(self) -> int:
        return len(self._running)

    def clock(self) -> float:
        return self.now

    def shutdown(self) -> list[JobResult]:
        """Jobs still in flight end now, as interrupted."""
        results = []
        while self._running:
            running = heapq.heappop(self._running)
            heapq.heappush(self._free, running.worker)
            results.append(
                JobResult(job=running.job, status=INTERRUPTED,
                          seconds=max(0.0, self.now - running.start - running.overhead),
                          started=running.start, finished=self.now, error="sweep stopped")
            )
        return results

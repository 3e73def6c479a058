"""The executor interface: how jobs run (Hydra launcher, simulator)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from hydra_hpo.trial import Job, JobResult


class Executor(ABC):
    """Runs up to ``n_workers`` jobs at a time.

    The tuner calls ``submit`` while fewer than ``n_workers`` jobs run and then ``wait``, which blocks
    until at least one submitted job has finished and returns the finished results. Batch executors may start
    submitted jobs only when ``wait`` is called. ``clock()`` is seconds since the executor started
    (real or simulated).
    """

    def __init__(self, n_workers: int) -> None:
        if n_workers < 1:
            raise ValueError(f"n_workers must be >= 1, got n_workers={n_workers}")
        self.n_workers = n_workers

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Start (or queue) a job."""

    @abstractmethod
    def wait(self) -> list[JobResult]:
        """Block until at least one job finished; return the finished ones (possibly several)."""

    @abstractmethod
    def num_running(self) -> int:
        """Jobs submitted and not yet returned by ``wait``."""

    @abstractmethod
    def clock(self) -> float:
        """Seconds since the sweep started (wall-clock, or simulated)."""

    def close(self) -> None:
        """The sweep is over (nothing runs): release what the executor still holds. Default: nothing."""

    def shutdown(self) -> list[JobResult]:
        """Stop: return results for jobs still in flight (marked interrupted). Default: none."""
        return []

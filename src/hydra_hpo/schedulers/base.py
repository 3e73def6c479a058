"""The scheduler interface: which trial runs next, and up to which resource (epochs)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Union

from hydra_hpo.searchers.base import Searcher
from hydra_hpo.trial import COMPLETED, DIVERGED, Job, JobResult


class _Wait:
    """Sentinel: nothing can start now; wait for a running job to finish (synchronous barriers)."""

    def __repr__(self) -> str:
        return "WAIT"


WAIT = _Wait()
Decision = Union[Job, _Wait, None]


def failure_status(result: JobResult) -> str:
    """The status of a failed result (``result.ok`` false): its own, or ``diverged`` for a completed job
    that brought no finite loss."""
    return DIVERGED if result.status == COMPLETED else result.status


class Scheduler(ABC):
    """Decides what runs next. The tuner calls ``next_job`` whenever a worker is free.

    ``next_job`` returns a :class:`~hydra_hpo.trial.Job` (with ``job_idx``/``seed`` left for the
    tuner), ``WAIT`` when nothing can start until a running job reports, or ``None`` when the
    scheduler will start nothing more. New trials get consecutive ids from 0 and their
    configurations from ``searcher.ask(trial_id)``; results reach the searcher from the tuner, not
    from the scheduler. Results carry the loss to minimize in
    ``result.value`` (the tuner normalizes maximize to minimize before calling ``on_result``).
    """

    copies_checkpoints = False  # True: trials continue from others' checkpoints, so the tuner snapshots them (PBT)

    def __init__(self, searcher: Searcher, n_trials: int) -> None:
        self.searcher = searcher
        self.n_trials = n_trials
        self.n_started = 0  # trials (configurations) started so far
        self._trial_status: dict[int, str] = {}  # how each ended trial ended

    @abstractmethod
    def next_job(self) -> Decision:
        """The next job to run, ``WAIT``, or ``None`` when done."""

    @abstractmethod
    def on_result(self, result: JobResult) -> list[int]:
        """Take a finished job's result; return ids of trials that can no longer run again.

        A failed result (``result.ok`` false) ends its trial. :meth:`trial_status` says how each ended.
        """

    def end_reason(self, trial_id: int) -> str | None:
        """Why the scheduler ended ``trial_id`` early, when it is not the plain end of the trial's run."""
        return None

    def finalize(self) -> list[int]:
        """Ids of trials still alive, not yet reported by ``on_result``, when the tuner stops."""
        return []

    def trial_status(self, trial_id: int) -> str | None:
        """How trial ``trial_id`` ended, once ``on_result`` or ``finalize`` reported it ended.

        ``"completed"`` (trained to the full resource), ``"stopped"`` (culled at a rung), ``"paused"``
        (it could still have continued when the sweep stopped), or the status of the failed job that
        ended it; ``None`` while the trial may still run (or for a scheduler that does not say).
        """
        return self._trial_status.get(trial_id)

    def _set_status(self, trial_ids: Iterable[int], status: str) -> None:
        for trial_id in trial_ids:
            self._trial_status[trial_id] = status

    def _new_trial_config(self) -> tuple[int, dict] | None:
        """Ask the searcher for a new configuration; ``None`` when the budget or searcher is spent."""
        if self.n_started >= self.n_trials:
            return None
        trial_id = self.n_started
        config = self.searcher.ask(trial_id)
        if config is None:
            return None
        self.n_started += 1
        return trial_id, config

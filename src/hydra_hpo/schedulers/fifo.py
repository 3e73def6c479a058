"""FIFO: every trial trains to the full resource in one job (plain random, grid or sobol search)."""

from __future__ import annotations

from hydra_hpo.schedulers.base import Decision, Scheduler, failure_status
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.trial import COMPLETED, Job, JobResult


class FIFOScheduler(Scheduler):
    """Starts a new configuration whenever a worker is free, each trained to ``max_resource`` epochs.

    With several workers this is asynchronous search: no batch barrier, every worker stays busy.
    """

    def __init__(self, searcher: Searcher, n_trials: int, max_resource: int) -> None:
        super().__init__(searcher, n_trials)
        if max_resource < 1:
            raise ValueError(f"max_resource must be >= 1, got max_resource={max_resource}")
        self.max_resource = max_resource

    def next_job(self) -> Decision:
        new = self._new_trial_config()
        if new is None:
            return None
        trial_id, config = new
        return Job(trial_id=trial_id, config=config, resource=self.max_resource)

    def on_result(self, result: JobResult) -> list[int]:
        trial_id = result.job.trial_id
        self._set_status([trial_id], COMPLETED if result.ok else failure_status(result))
        return [trial_id]

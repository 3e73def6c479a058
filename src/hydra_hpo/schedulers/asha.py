"""Asynchronous successive halving (Li et al. 2020; d2l 19.5): promotion and stopping variants."""

from __future__ import annotations

from collections import deque

from hydra_hpo.errors import SettingsError
from hydra_hpo.schedulers.base import WAIT, Decision, failure_status
from hydra_hpo.schedulers.rungs import (MultiFidelityScheduler, check_type, continues, promotion_quota, rank_value,
                                        ranked)
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.trial import COMPLETED, STOPPED, Job, JobResult


class ASHAScheduler(MultiFidelityScheduler):
    """ASHA over ``rung_levels(r_min, r_max, eta)``; never waits for a rung to fill up.

    ``type="promotion"``: a free worker promotes a trial that is in the top ``floor(n/eta)`` of the
    ``n`` results of its rung and not promoted yet (highest rung first); otherwise it starts a new
    configuration at ``r_min``. Trials left behind at a rung may still be promoted later, so they
    only end at ``r_max`` (``completed``), on failure, or at ``finalize()`` (``paused``).

    ``type="stopping"``: each trial continues rung by rung as long as its loss ranks within the top
    ``max(1, floor(n/eta))`` of the ``n`` results its rung has so far (itself included; equal losses
    count in its favour), else it stops (``stopped``). So the first trial at a rung always continues. Continuations
    go before new configurations.

    Failed jobs end their trial and rank last at their rung (they still count in ``n``).

    ``max_paused_checkpoints`` (promotion type): a paused trial keeps its checkpoint, so disk use grows
    with ``n_trials``. With this bound, at most that many paused trials per rung stay promotable: those
    with the best losses there. The others end as ``stopped`` (``end_reason`` says why) and their checkpoints go;
    they are never promoted, so when the bound binds, a later promotion from that rung goes to the
    next kept trial instead.
    """

    def __init__(
        self,
        searcher: Searcher,
        n_trials: int,
        r_min: int,
        r_max: int,
        eta: int,
        type: str = "promotion",  # noqa: A002 - the config key is hpo.type
        max_paused_checkpoints: int | None = None,
    ) -> None:
        check_type(type)
        if max_paused_checkpoints is not None:
            if isinstance(max_paused_checkpoints, bool) or not isinstance(max_paused_checkpoints, int) \
                    or max_paused_checkpoints < 1:
                raise SettingsError(f"hpo.max_paused_checkpoints={max_paused_checkpoints!r}: must be an integer >= 1 "
                                    "or null")
            if type != "promotion":
                raise SettingsError(f"hpo.max_paused_checkpoints={max_paused_checkpoints}: only with "
                                    "hpo.type=promotion (the stopping type pauses no trial)")
        self.max_paused_checkpoints = max_paused_checkpoints
        self._released: dict[int, str] = {}  # paused trials ended by the bound, and why
        super().__init__(searcher, n_trials, r_min, r_max, eta)
        self.type = type
        # per rung below the top: results (None for a failed job) and trials promoted from it
        self._losses: list[dict[int, float | None]] = [{} for _ in self.levels[:-1]]
        self._promoted: list[set[int]] = [set() for _ in self.levels[:-1]]
        self._continuations: deque[Job] = deque()  # stopping type
        self._in_flight: set[int] = set()  # trials whose job was handed out and has not reported

    def next_job(self) -> Decision:
        job = self._promotion() if self.type == "promotion" else self._continuation()
        if job is None:
            trial_id = self._start_trial()
            if trial_id is not None:
                job = Job(trial_id, self._configs[trial_id], self.levels[0])
        if job is None:
            # a running job may still report a result that allows a promotion or continuation
            return WAIT if self._in_flight else None
        self._in_flight.add(job.trial_id)
        return job

    def _promotion(self) -> Job | None:
        for rung in range(len(self.levels) - 2, -1, -1):
            losses = self._losses[rung]
            top = ranked(losses)[: promotion_quota(len(losses), self.eta)]
            for trial_id in top:
                if trial_id not in self._promoted[rung] and trial_id not in self._released:
                    self._promoted[rung].add(trial_id)
                    config = self._configs[trial_id]
                    return Job(trial_id, config, self.levels[rung + 1], self.levels[rung])
        return None

    def _continuation(self) -> Job | None:
        return self._continuations.popleft() if self._continuations else None

    def on_result(self, result: JobResult) -> list[int]:
        job = result.job
        if job.trial_id not in self._in_flight or job.resource not in self.levels:
            raise ValueError(f"unexpected result of trial {job.trial_id} at resource {job.resource}")
        self._in_flight.discard(job.trial_id)
        loss = rank_value(result)
        rung = self.levels.index(job.resource)
        if rung < len(self.levels) - 1:
            self._losses[rung][job.trial_id] = loss
        if loss is None:
            return self._end([job.trial_id], failure_status(result))
        if rung == len(self.levels) - 1:
            return self._end([job.trial_id], COMPLETED)
        if self.max_paused_checkpoints is not None:
            return self._end(self._release_paused(rung), STOPPED)
        if self.type == "stopping":
            if not continues(self._losses[rung], job.trial_id, self.eta):
                return self._end([job.trial_id], STOPPED)
            self._continuations.append(
                Job(job.trial_id, job.config, self.levels[rung + 1], self.levels[rung])
            )
        return []

    def _release_paused(self, rung: int) -> list[int]:
        """The paused trials at ``rung`` beyond the ``max_paused_checkpoints`` best: no longer promotable."""
        paused = [t for t in ranked(self._losses[rung])
                  if t not in self._promoted[rung] and t not in self._released and t in self._alive]
        released = paused[self.max_paused_checkpoints:]
        for trial_id in released:
            self._released[trial_id] = (f"hpo.max_paused_checkpoints={self.max_paused_checkpoints}: not among the "
                                        f"best paused trials at rung {self.levels[rung]}")
        return released

    def end_reason(self, trial_id: int) -> str | None:
        return self._released.get(trial_id)

"""Synchronous successive halving (d2l 19.4), where promoted trials continue from their checkpoint."""

from __future__ import annotations

from abc import abstractmethod
from collections import deque
from collections.abc import Mapping
from typing import Any

from hydra_hpo.schedulers.base import WAIT, Decision, failure_status
from hydra_hpo.schedulers.rungs import MultiFidelityScheduler, promotion_quota, rank_value, ranked
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.trial import COMPLETED, STOPPED, Job, JobResult


def survivors(n: int, eta: int) -> int:
    """How many of a bracket rung's ``n`` trials continue to the next rung: ``max(1, floor(n / eta))``."""
    return max(1, promotion_quota(n, eta))


def bracket_table(levels: list[int], n_configs: int, eta: int) -> list[tuple[int, int]]:
    """``(n_i, r_i)`` per rung of a bracket over ``levels`` that starts ``n_configs`` trials, no job failing."""
    table = [(n_configs, levels[0])]
    for resource in levels[1:]:
        table.append((survivors(table[-1][0], eta), resource))
    return table


class Bracket:
    """One round of successive halving over ``levels``, starting with the trials ``trial_ids``.

    All jobs of a rung must report before the top ``floor(n / eta)`` (at least one) of its ``n``
    trials continue to the next rung; failed jobs rank last and never continue.
    """

    def __init__(
        self, levels: list[int], trial_ids: list[int], configs: Mapping[int, dict[str, Any]], eta: int
    ) -> None:
        if not trial_ids:
            raise ValueError("a bracket needs at least one trial")
        self.levels = levels
        self.eta = eta
        self.rung = 0
        self._configs = configs
        self._members = list(trial_ids)  # trials at the current rung
        self._losses: dict[int, float | None] = {}  # their results so far
        self._queue = deque(self._jobs(0))

    def _jobs(self, rung: int) -> list[Job]:
        previous = self.levels[rung - 1] if rung > 0 else 0
        return [Job(t, self._configs[t], self.levels[rung], previous) for t in self._members]

    @property
    def done(self) -> bool:
        """True once the last rung has reported (or every trial of a rung failed)."""
        return not self._members

    def next_job(self) -> Decision:
        """A queued job; ``WAIT`` while the rung's jobs run; ``None`` once the bracket is done."""
        if self._queue:
            return self._queue.popleft()
        return None if self.done else WAIT

    def on_result(self, result: JobResult) -> dict[int, str]:
        """Record a result; returns the trials it ends, each with its status: the failed job's status,
        ``stopped`` (not promoted) or ``completed`` (at the top rung)."""
        trial_id = result.job.trial_id
        if trial_id not in self._members or result.job.resource != self.levels[self.rung]:
            raise ValueError(
                f"unexpected result of trial {trial_id} at resource {result.job.resource}: "
                f"rung {self.rung} (resource {self.levels[self.rung]}) runs {self._members}"
            )
        self._losses[trial_id] = rank_value(result)
        ended = {} if result.ok else {trial_id: failure_status(result)}
        if len(self._losses) < len(self._members):
            return ended
        best = ranked(self._losses)
        last_rung = self.rung == len(self.levels) - 1
        keep = [] if last_rung else best[: survivors(len(self._members), self.eta)]
        ended.update(dict.fromkeys(best[len(keep) :], COMPLETED if last_rung else STOPPED))
        self.rung += 1
        self._members = keep
        self._losses = {}
        if keep:
            self._queue.extend(self._jobs(self.rung))
        return ended


class BracketScheduler(MultiFidelityScheduler):
    """Runs brackets one after the other until ``n_trials`` configurations have started."""

    def __init__(self, searcher: Searcher, n_trials: int, r_min: int, r_max: int, eta: int) -> None:
        super().__init__(searcher, n_trials, r_min, r_max, eta)
        self._bracket: Bracket | None = None
        self._exhausted = False  # budget or searcher spent: open no more brackets
        self.n_brackets = 0

    @abstractmethod
    def _next_bracket_shape(self) -> tuple[list[int], int]:
        """Rung levels and number of configurations of the next bracket."""

    def _open_bracket(self) -> Bracket | None:
        levels, n_configs = self._next_bracket_shape()
        trial_ids: list[int] = []
        while len(trial_ids) < n_configs:
            trial_id = self._start_trial()
            if trial_id is None:
                self._exhausted = True
                break
            trial_ids.append(trial_id)
        if self.n_started >= self.n_trials:
            self._exhausted = True
        if not trial_ids:
            return None
        self.n_brackets += 1
        return Bracket(levels, trial_ids, self._configs, self.eta)

    def next_job(self) -> Decision:
        if self._bracket is None or self._bracket.done:
            self._bracket = None if self._exhausted else self._open_bracket()
            if self._bracket is None:
                return None
        return self._bracket.next_job()

    def on_result(self, result: JobResult) -> list[int]:
        if self._bracket is None:
            raise ValueError(f"result of trial {result.job.trial_id} arrived with no bracket running")
        ended: list[int] = []
        for trial_id, status in self._bracket.on_result(result).items():
            ended += self._end([trial_id], status)
        return sorted(ended)


class SuccessiveHalvingScheduler(BracketScheduler):
    """Synchronous successive halving over ``rung_levels(r_min, r_max, eta)``.

    Each round starts ``eta**(len(levels) - 1)`` configurations at ``r_min`` (fewer when the
    ``n_trials`` budget runs out) and halves them rung by rung; rounds repeat until ``n_trials``
    configurations have started. A promoted trial resumes from its checkpoint at the rung it reached.
    """

    def _next_bracket_shape(self) -> tuple[list[int], int]:
        return self.levels, self.eta ** (len(self.levels) - 1)

"""Asynchronous Hyperband whose brackets are sampled by how far each rung's ranking can be trusted, measured
online (after Hyper-Tune, Li et al. 2022)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from scipy.stats import kendalltau

from hydra_hpo.objectives import Point
from hydra_hpo.schedulers.base import WAIT, Decision, failure_status
from hydra_hpo.schedulers.hyperband import bracket_size
from hydra_hpo.schedulers.rungs import (MultiFidelityScheduler, check_int, check_type, continues, promotion_quota,
                                        rank_value, ranked)
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.trial import COMPLETED, STOPPED, Job, JobResult


def tau_null_se(n: int) -> float:
    """Standard error of Kendall's tau over ``n`` pairs of unrelated rankings: ``sqrt(2(2n+5) / (9n(n-1)))``."""
    return math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))


class HyperTuneScheduler(MultiFidelityScheduler):
    """Asynchronous Hyperband over ``rung_levels(r_min, r_max, eta)`` with adaptive bracket weights.

    Bracket ``b`` (``0 .. K``, ``K = len(levels) - 1``) starts its trials at ``levels[b]`` and runs ASHA
    over ``levels[b:]`` with its own rungs; bracket ``K`` trains to ``r_max`` directly. ``type="promotion"``:
    a free worker first promotes (any bracket, highest rung first, as :class:`ASHAScheduler`);
    ``type="stopping"``: a trial continues as soon as its result ranks within the top ``max(1, floor(n/eta))``
    of the ``n`` results its rung of its bracket has so far, else it stops (ASHA's stopping type, per
    bracket), and continuations go first. Otherwise a free worker starts a new configuration in a bracket
    drawn with weights ``w_b = hyperband_b * cost_b * trust_b``:

    - ``hyperband_b`` is Hyperband's bracket size (:func:`bracket_size`), the trials synchronous
      Hyperband starts in it (Syne Tune's default bracket distribution): the same budget per bracket,
      counted in epochs;
    - ``cost_b`` (:meth:`cost_correction`) turns that into the same budget in seconds: a trial's first job
      pays a start-up and each later job of it (a promotion) its own overhead, both measured online
      (:meth:`job_overhead_epochs`), and the cheap brackets run the most jobs per epoch (``1`` when jobs
      cost only their epochs). The two differ when a promotion continues the trial's waiting job process
      (``hpo.keep_alive``) instead of starting a new one;
    - ``trust_b`` (:meth:`rung_trust`): how far rung ``b``'s ranking stands for the top rung's, from
      Kendall's tau between the losses at rung ``b`` and at the highest rung that shares at least
      ``min_pairs`` trials with it. Those trials are the ones promoted out of rung ``b``, so tau measures
      whether rung ``b`` still orders the *good* configurations. ``tau + se`` (its standard error for
      unrelated rankings: optimism while the evidence is thin), clipped to ``[0, 1]``, times the trust
      of the rung compared with; ``1`` for the top bracket, which stops nothing early. A rung shown to
      rank no better than a coin turns its bracket off.

    Failed jobs end their trial and rank last at their rung. With several objectives (losses are
    points), rungs are not compared and the weights stay Hyperband's. Decisions depend only on the
    sequence of ``next_job``/``on_result`` calls and a generator seeded by the searcher's seed, so a
    resumed sweep replays them.
    """

    def __init__(
        self,
        searcher: Searcher,
        n_trials: int,
        r_min: int,
        r_max: int,
        eta: int,
        min_pairs: int = 6,
        type: str = "promotion",  # noqa: A002 - the config key is hpo.type
    ) -> None:
        check_type(type)
        super().__init__(searcher, n_trials, r_min, r_max, eta)
        self.type = type
        self._continuations: deque[Job] = deque()  # stopping type
        self.min_pairs = check_int("min_pairs", min_pairs, 3)
        top = len(self.levels) - 1
        self.hyperband_weights = np.array(
            [bracket_size(top - b, top, eta) for b in range(top + 1)], dtype=float)
        self._rng = np.random.default_rng([int(searcher.seed), 0x4854])
        self._bracket_of: dict[int, int] = {}
        # per bracket, per rung index below the top: results (None: failed) and trials promoted from it
        self._losses: list[dict[int, dict[int, object]]] = [{} for _ in self.levels]
        self._promoted: list[dict[int, set[int]]] = [{} for _ in self.levels]
        # every rung's finite scalar losses, all brackets pooled: what the trust is measured on
        self._at_rung: list[dict[int, float]] = [{} for _ in self.levels]
        self._in_flight: set[int] = set()
        self.bracket_counts = [0] * len(self.levels)  # trials started per bracket
        # (epochs, busy seconds, whether it was the trial's first job) of every finished job
        self._jobs: list[tuple[int, float, bool]] = []

    # weights -----------------------------------------------------------------------------------

    def rung_agreement(self) -> list[tuple[int, float, int] | None]:
        """Per rung ``k`` below the top: ``(j, tau, n)``, Kendall's tau-b between the losses at rung ``k``
        and at rung ``j``, the highest rung above ``k`` that shares at least ``min_pairs`` trials with it
        (those promoted out of ``k`` that got that far), over those ``n`` trials; ``None`` without one."""
        agreement: list[tuple[int, float, int] | None] = [None] * len(self.levels)
        for k in range(len(self.levels) - 1):
            low = self._at_rung[k]
            for j in range(len(self.levels) - 1, k, -1):
                high = self._at_rung[j]
                shared = [t for t in low if t in high]
                if len(shared) >= self.min_pairs:
                    tau = kendalltau([low[t] for t in shared], [high[t] for t in shared]).statistic
                    # constant losses at a rung order nothing
                    agreement[k] = (j, float(tau) if np.isfinite(tau) else 0.0, len(shared))
                    break
        return agreement

    def rung_trust(self) -> np.ndarray:
        """How far each rung's ranking stands for the top rung's: ``1`` at the top; below it, for rung
        ``k`` compared with rung ``j`` (:meth:`rung_agreement`), ``min(1, max(0, tau + se)) * trust[j]``,
        where ``se`` is tau's standard error for ``n`` unrelated pairs (optimism: a rung is only turned
        off once its ranking is shown to be noise); an unmeasured rung counts as ``trust[k + 1]``."""
        trust = np.ones(len(self.levels))
        agreement = self.rung_agreement()
        for k in range(len(self.levels) - 2, -1, -1):
            if agreement[k] is None:
                trust[k] = trust[k + 1]
            else:
                j, tau, n = agreement[k]
                trust[k] = min(1.0, max(0.0, tau + tau_null_se(n))) * trust[j]
        return trust

    def job_overhead_epochs(self) -> tuple[float, float]:
        """``(first, later)``: the fixed cost in epochs of a trial's first job (its start-up) and of each
        later job (a promotion: a new job that restores the checkpoint, or a continuation of the waiting job
        process), from the least-squares fit ``seconds = a_first + b * epochs`` (first jobs) and
        ``a_later + b * epochs`` (later jobs, same ``b``) through the finished jobs' busy seconds; ``(0, 0)``
        until epochs and seconds determine the fit. ``later`` is ``first`` until a later job has finished."""
        jobs = np.array(self._jobs, dtype=float).reshape(-1, 3)
        epochs, seconds, first = jobs.T
        groups = [group for group in (first == 1, first == 0) if group.any()]
        design = np.column_stack([*(group.astype(float) for group in groups), epochs])
        if np.linalg.matrix_rank(design) < design.shape[1]:  # also with no jobs at all
            return 0.0, 0.0
        *intercepts, slope = np.linalg.lstsq(design, seconds, rcond=None)[0]
        if slope <= 0:
            return 0.0, 0.0
        overheads = [max(0.0, a) / slope for a in intercepts]
        return overheads[0], overheads[-1]  # one group so far: the same overhead for both

    def cost_correction(self) -> np.ndarray:
        """Per bracket, its expected epochs per started trial over its expected cost in epochs with the
        job overheads added: one first job, and a later job per promotion (``1`` for every bracket when
        jobs cost nothing but their epochs). Hyperband's sizes give each bracket the same budget in epochs;
        times this, the same budget in seconds."""
        first, later = self.job_overhead_epochs()
        ratios = np.ones(len(self.levels))
        for b in range(len(self.levels)):
            epochs = jobs = 0.0
            for i in range(b, len(self.levels)):
                reach = float(self.eta) ** (b - i)  # the share of the bracket's trials promoted to rung i
                epochs += reach * (self.levels[i] - (self.levels[i - 1] if i > b else 0))
                jobs += reach
            ratios[b] = epochs / (epochs + first + later * (jobs - 1))
        return ratios

    def bracket_weights(self) -> np.ndarray:
        """The probabilities with which the next new trial's bracket is drawn (bracket ``b`` starts at
        ``levels[b]``): Hyperband's bracket sizes times :meth:`cost_correction` times :meth:`rung_trust`."""
        weights = self.hyperband_weights * self.cost_correction() * self.rung_trust()
        return weights / weights.sum()  # the top bracket's trust is always 1

    # scheduling --------------------------------------------------------------------------------

    def next_job(self) -> Decision:
        if self.type == "promotion":
            job = self._promotion()
        else:
            job = self._continuations.popleft() if self._continuations else None
        if job is None:
            trial_id = self._start_trial()
            if trial_id is not None:
                bracket = int(self._rng.choice(len(self.levels), p=self.bracket_weights()))
                self._bracket_of[trial_id] = bracket
                self.bracket_counts[bracket] += 1
                job = Job(trial_id, self._configs[trial_id], self.levels[bracket])
        if job is None:
            return WAIT if self._in_flight else None
        self._in_flight.add(job.trial_id)
        return job

    def _promotion(self) -> Job | None:
        for rung in range(len(self.levels) - 2, -1, -1):
            for bracket in range(rung + 1):
                losses = self._losses[bracket].get(rung)
                if not losses:
                    continue
                promoted = self._promoted[bracket].setdefault(rung, set())
                for trial_id in ranked(losses)[: promotion_quota(len(losses), self.eta)]:
                    if trial_id not in promoted:
                        promoted.add(trial_id)
                        return Job(trial_id, self._configs[trial_id], self.levels[rung + 1], self.levels[rung])
        return None

    def on_result(self, result: JobResult) -> list[int]:
        job = result.job
        if job.trial_id not in self._in_flight or job.resource not in self.levels:
            raise ValueError(f"unexpected result of trial {job.trial_id} at resource {job.resource}")
        self._in_flight.discard(job.trial_id)
        if result.finished > result.started:
            self._jobs.append((job.epochs, result.finished - result.started, job.previous_resource == 0))
        loss = rank_value(result)
        rung = self.levels.index(job.resource)
        if loss is not None and not isinstance(loss, Point) and np.isfinite(loss):
            self._at_rung[rung][job.trial_id] = loss
        if rung < len(self.levels) - 1:
            losses = self._losses[self._bracket_of[job.trial_id]].setdefault(rung, {})
            losses[job.trial_id] = loss
        if loss is None:
            return self._end([job.trial_id], failure_status(result))
        if rung == len(self.levels) - 1:
            return self._end([job.trial_id], COMPLETED)
        if self.type == "stopping":
            if not continues(losses, job.trial_id, self.eta):
                return self._end([job.trial_id], STOPPED)
            self._continuations.append(Job(job.trial_id, job.config, self.levels[rung + 1], job.resource))
        return []


"""Population based training (Jaderberg et al. 2017), asynchronous as Ray Tune's PBT.

A population of ``population_size`` trials trains in segments of ``perturbation_interval`` epochs. When a
member finishes a segment it is ranked against the latest results of the other members (no generation
barrier). A member in the bottom ``quantile_fraction`` *exploits*: it continues from the checkpoint of a
member in the top fraction (a job with ``source_trial``: the checkpoint store copies the donor's checkpoint
into the member's own directory) with the donor's configuration, whose ``mutable`` keys it then *explores*:
each is resampled from the search space with probability ``resample_probability``, else multiplied by a
factor drawn from ``perturbation_factors`` and kept within the space's bounds. Other members continue as
they are. A failed member ends; while fewer than ``n_trials`` trials were started, a new trial replaces it
by exploiting a top member (or, before any result, with a fresh configuration).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Sequence

import numpy as np

from hydra_hpo.errors import SettingsError
from hydra_hpo.schedulers.base import WAIT, Decision, Scheduler, failure_status
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.space import Categorical, Float, Int
from hydra_hpo.trial import COMPLETED, PAUSED, Job, JobResult

# The keys the trial runner can change in a running training: it writes them into the optimizer's
# param_groups after restoring a checkpoint (anything else, e.g. the architecture, would not fit the checkpoint).
OPTIMIZER_PARAMS = ("lr", "momentum", "weight_decay")


def optimizer_param(key: str) -> str:
    """The param_group entry a config key sets (``model.lr`` -> ``lr``)."""
    return key.rsplit(".", 1)[-1]


def mutable_keys(mutable: Sequence[str] | None, space: Any) -> tuple[str, ...]:
    """``hpo.mutable`` as given, or when ``None`` every search-space key naming an optimizer hyperparameter."""
    if mutable is None:
        found = tuple(key for key in space.names if optimizer_param(key) in OPTIMIZER_PARAMS)
        if not found:
            raise SettingsError(f"hpo.mutable=null: the search space ({', '.join(space.names)}) has no optimizer "
                                f"hyperparameter ({', '.join(OPTIMIZER_PARAMS)}) that PBT could change during "
                                "training; list the keys in hpo.mutable")
        return found
    return tuple(str(k) for k in mutable)


class PBTScheduler(Scheduler):
    """Asynchronous PBT over ``max_resource`` epochs; see the module docstring.

    ``mutable`` lists the search-space keys that may change during training (only optimizer hyperparameters);
    ``None``: those of the search space's keys that name one (``model.lr``, ``model.momentum``, ...).
    Decisions are drawn from a generator seeded by the searcher's seed, so a sweep replays exactly.
    """

    copies_checkpoints = True  # the tuner snapshots each member's checkpoint at the end of every segment

    def __init__(
        self,
        searcher: Searcher,
        n_trials: int,
        max_resource: int,
        mutable: Sequence[str] | None = None,
        population_size: int = 4,
        perturbation_interval: int = 2,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: Sequence[float] = (0.8, 1.2),
    ) -> None:
        super().__init__(searcher, n_trials)
        space = searcher.space

        def positive_int(key: str, value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"hpo.{key}={value!r}: must be an integer >= 1")
            return value

        self.population_size = positive_int("population_size", population_size)
        self.interval = positive_int("perturbation_interval", perturbation_interval)
        if population_size > n_trials:
            raise SettingsError(f"hpo.population_size={population_size}: larger than hpo.n_trials={n_trials} "
                                "(n_trials counts the members and the trials that replace failed ones)")
        if not isinstance(quantile_fraction, (int, float)) or not 0.0 < quantile_fraction <= 0.5:
            raise SettingsError(f"hpo.quantile_fraction={quantile_fraction!r}: must be in (0, 0.5]")
        if not isinstance(resample_probability, (int, float)) or not 0.0 <= resample_probability <= 1.0:
            raise SettingsError(f"hpo.resample_probability={resample_probability!r}: must be in [0, 1]")
        factors = list(perturbation_factors or [])
        if not factors or any(isinstance(f, bool) or not isinstance(f, (int, float)) or f <= 0 for f in factors):
            raise SettingsError(f"hpo.perturbation_factors={perturbation_factors!r}: must be a list of positive "
                                "numbers, e.g. [0.8, 1.2]")
        if isinstance(mutable, str) or (mutable is not None and not mutable):
            raise SettingsError(f"hpo.mutable={mutable!r}: list the keys PBT may change during training, "
                                "e.g. [model.lr, model.momentum]")
        mutable = mutable_keys(mutable, space)
        for key in mutable:
            if optimizer_param(str(key)) not in OPTIMIZER_PARAMS:
                raise SettingsError(
                    f"hpo.mutable: {key} cannot change during training; only optimizer hyperparameters "
                    f"({', '.join(OPTIMIZER_PARAMS)}) can, as the job writes them into the optimizer's "
                    "param_groups after restoring a checkpoint. Remove it from hpo.mutable (it stays fixed per member)")
            if key not in space:
                raise SettingsError(f"hpo.mutable: {key} is not in the search space (its keys: "
                                    f"{', '.join(space.names)}); add it to search_space or remove it")
        self.mutable = tuple(str(k) for k in mutable)
        self.max_resource = max_resource
        self.quantile_fraction = float(quantile_fraction)
        self.resample_probability = float(resample_probability)
        self.factors = [float(f) for f in factors]
        self.rng = np.random.default_rng([int(searcher.seed), 0x9B7])
        self._configs: dict[int, dict[str, Any]] = {}  # each member's current configuration
        self._latest: dict[int, tuple[int, float]] = {}  # alive members' latest (resource, loss): ranked, donors
        self._alive: set[int] = set()
        self._waiting: deque[int] = deque()  # members that reported, to decide for when a worker is free
        self._in_flight: set[int] = set()
        self._members_started = 0

    # ----------------------------------------------------------------- decisions
    # A member that reported waits in ``_waiting`` until a worker is free; exploit or continue is decided then,
    # against the latest results of all members, so a donor's newest snapshot is the one copied right away.
    _REPLACE = -1  # in ``_waiting``: a new trial in place of a failed member

    def next_job(self) -> Decision:
        job = None
        if self._members_started < self.population_size:  # the whole population starts before anyone continues
            job = self._fresh_trial()
        while job is None and self._waiting:
            job = self._decide(self._waiting.popleft())
        if job is None:
            return WAIT if self._in_flight else None
        self._in_flight.add(job.trial_id)
        return job

    def _fresh_trial(self) -> Job | None:
        new = self._new_trial_config()
        if new is None:
            return None
        self._members_started += 1
        trial_id, config = new
        self._configs[trial_id] = dict(config)
        self._alive.add(trial_id)
        return self._job(trial_id, 0)

    def _job(self, trial_id: int, start: int, source: int | None = None) -> Job:
        return Job(trial_id, dict(self._configs[trial_id]), min(start + self.interval, self.max_resource), start,
                   source_trial=source, set_params=self.mutable)

    def on_result(self, result: JobResult) -> list[int]:
        job = result.job
        if job.trial_id not in self._in_flight:
            raise ValueError(f"unexpected result of trial {job.trial_id} at resource {job.resource}")
        self._in_flight.discard(job.trial_id)
        trial_id = job.trial_id
        if not result.ok:
            self._alive.discard(trial_id)
            self._latest.pop(trial_id, None)
            self._set_status([trial_id], failure_status(result))
            self._waiting.append(self._REPLACE)
            return [trial_id]
        if job.resource >= self.max_resource:
            self._alive.discard(trial_id)
            self._latest.pop(trial_id, None)
            self._set_status([trial_id], COMPLETED)
            return [trial_id]
        self._latest[trial_id] = (job.resource, float(result.value))
        self._waiting.append(trial_id)
        return []

    def _decide(self, trial_id: int) -> Job | None:
        if trial_id == self._REPLACE:
            return self._replace()
        donor = self._donor_for(trial_id)
        if donor is None:
            return self._job(trial_id, self._latest[trial_id][0])
        self._configs[trial_id] = self._explore(self._configs[donor])
        # it gave up its own result: neither ranked nor a donor until it reports again
        self._latest.pop(trial_id, None)
        return self._job(trial_id, self._latest[donor][0], source=donor)

    def _quantiles(self) -> tuple[list[int], list[int]]:
        """(top, bottom) members by their latest loss, as Ray Tune: ceil(n * q), at most half of n."""
        ranked = sorted(self._latest, key=lambda t: (self._latest[t][1], t))
        k = min(math.ceil(len(ranked) * self.quantile_fraction), len(ranked) // 2)
        return ranked[:k], (ranked[-k:] if k else [])

    def _donor_for(self, trial_id: int) -> int | None:
        top, bottom = self._quantiles()
        if trial_id not in bottom:
            return None
        donors = [t for t in top if t != trial_id]
        return int(donors[int(self.rng.integers(len(donors)))]) if donors else None

    def _replace(self) -> Job | None:
        """A new trial in place of a failed member: a top member's checkpoint, explored; before any member
        has a result, a fresh member (in ``next_job``)."""
        top, _ = self._quantiles()
        if not top and self._latest:  # a lone member: it is the top
            top = list(self._latest)
        if not top:
            self._members_started -= 1
            return None
        new = self._new_trial_config()  # counts the trial; its configuration comes from the donor
        if new is None:
            return None
        trial_id, _ = new
        donor = int(top[int(self.rng.integers(len(top)))])
        self._configs[trial_id] = self._explore(self._configs[donor])
        self._alive.add(trial_id)
        return self._job(trial_id, self._latest[donor][0], source=donor)

    def _new_trial_config(self) -> tuple[int, dict] | None:
        if self.n_started >= self.n_trials:
            return None
        return super()._new_trial_config()

    def _explore(self, config: dict[str, Any]) -> dict[str, Any]:
        space = self.searcher.space
        explored = dict(config)
        for key in self.mutable:
            param = space[key]
            if self.rng.random() < self.resample_probability:
                explored[key] = space.sample(self.rng)[key]
            else:
                explored[key] = perturb(param, config[key], float(self.rng.choice(self.factors)))
        return explored

    def finalize(self) -> list[int]:
        alive = sorted(self._alive)
        self._set_status(alive, PAUSED)
        return alive


def perturb(param: Float | Int | Categorical, value: Any, factor: float) -> Any:
    """``value`` multiplied by ``factor`` within the parameter's bounds.

    A log-scale parameter moves by ``log(factor)`` in log space, which is the same multiplication; a linear one
    moves by ``factor - 1`` times its value, or, when the value is 0 (where a product would stick), that fraction
    of its range. Integers round and move at least one step; a categorical moves to a neighbouring choice.
    """
    if isinstance(param, Categorical):
        index = param.index(value) + (1 if factor > 1 else -1)
        return param.choices[min(max(index, 0), len(param.choices) - 1)]
    if param.log or value != 0:
        moved = float(value) * factor
    else:
        moved = abs(factor - 1.0) * (param.high - param.low) * (1 if factor > 1 else -1)
    if isinstance(param, Int):
        step = int(round(moved))
        if step == value:
            step = value + (1 if factor > 1 else -1)
        return int(min(max(step, param.low), param.high))
    return float(min(max(moved, param.low), param.high))

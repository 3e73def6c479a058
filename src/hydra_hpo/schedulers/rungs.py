"""Rung levels and the bookkeeping shared by the multi-fidelity schedulers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hydra_hpo.errors import SettingsError
from hydra_hpo.objectives import Point, rank_points
from hydra_hpo.schedulers.base import Scheduler
from hydra_hpo.searchers.base import Searcher
from hydra_hpo.trial import PAUSED, JobResult


ASHA_TYPES = ("promotion", "stopping")


def check_type(value: object) -> str:
    """``hpo.type`` of an asynchronous rung scheduler (ASHA, Hyper-Tune): promotion or stopping."""
    if value not in ASHA_TYPES:
        raise SettingsError(f"hpo.type={value!r}: must be one of {', '.join(ASHA_TYPES)}")
    return str(value)


def check_int(key: str, value: object, minimum: int) -> int:
    # bool is an int subclass; hpo.eta=true is a typo, not 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"hpo.{key}={value!r}: must be an integer")
    if value < minimum:
        raise SettingsError(f"hpo.{key}={value}: must be >= {minimum}")
    return value


def validate_rung_settings(r_min: int, r_max: int, eta: int) -> None:
    """Raise ``ValueError`` naming the key and value of an invalid ``r_min``, ``r_max`` or ``eta``."""
    check_int("eta", eta, 2)
    check_int("r_min", r_min, 1)
    check_int("r_max", r_max, 1)
    if r_min > r_max:
        raise SettingsError(f"hpo.r_min={r_min}: must be <= hpo.r_max={r_max}")


def rung_levels(r_min: int, r_max: int, eta: int) -> list[int]:
    """Resources (epochs) of the rungs: ``r_min * eta**k`` while ``<= r_max``, then ``r_max``.

    ``rung_levels(2, 10, 2) == [2, 4, 8, 10]`` (the d2l setting); ``rung_levels(1, 81, 3) ==
    [1, 3, 9, 27, 81]``. Integer arithmetic, so exact powers never lose a rung to rounding.
    """
    validate_rung_settings(r_min, r_max, eta)
    levels = [r_min]
    while levels[-1] * eta <= r_max:
        levels.append(levels[-1] * eta)
    if levels[-1] != r_max:
        levels.append(r_max)
    return levels


def promotion_quota(n: int, eta: int) -> int:
    """How many of ``n`` results at a rung are in its top ``1/eta``: ``floor(n / eta)``."""
    return n // eta


def rank_value(result: JobResult) -> float | Point | None:
    """What a scheduler ranks a result by: its loss, or its objectives' :class:`Point` when the sweep has
    several objectives or constraints; ``None`` for a failed job."""
    if not result.ok:
        return None
    return result.point if result.point is not None else result.value


def continues(losses: Mapping[int, float | Point | None], trial_id: int, eta: int) -> bool:
    """Stopping-type rule at one rung: whether ``trial_id`` (its loss already in ``losses``) ranks within the
    top ``max(1, floor(n / eta))`` of the ``n`` results there so far (equal losses count in its favour)."""
    loss = losses[trial_id]
    if isinstance(loss, Point):  # several objectives: its place in the rung's ranking
        better = ranked(losses).index(trial_id)
    else:
        better = sum(1 for other in losses.values() if other is not None and other < loss)
    return better < max(1, promotion_quota(len(losses), eta))


def ranked(losses: Mapping[int, float | Point | None]) -> list[int]:
    """Ids of trials with a loss, best first, ties to the older trial; failed ones (``None``) left out.
    Points (several objectives, constraints) rank by :func:`hydra_hpo.objectives.rank_points`."""
    if any(isinstance(loss, Point) for loss in losses.values()):
        return rank_points(losses)
    ok = [trial_id for trial_id, loss in losses.items() if loss is not None]
    return sorted(ok, key=lambda trial_id: (losses[trial_id], trial_id))


class MultiFidelityScheduler(Scheduler):
    """A scheduler over the rungs ``rung_levels(r_min, r_max, eta)`` that tracks which trials are alive.

    Every trial it starts is reported ended exactly once: by ``on_result`` (through ``_end``) or, for
    those still alive when the sweep stops, by ``finalize`` (status ``paused``).
    """

    def __init__(self, searcher: Searcher, n_trials: int, r_min: int, r_max: int, eta: int) -> None:
        super().__init__(searcher, n_trials)
        self.levels = rung_levels(r_min, r_max, eta)
        self.r_min, self.r_max, self.eta = r_min, r_max, eta
        self._configs: dict[int, dict] = {}
        self._alive: set[int] = set()

    def _start_trial(self) -> int | None:
        """Start a new trial; its id, or ``None`` when the budget or the searcher is spent."""
        new = self._new_trial_config()
        if new is None:
            return None
        trial_id, config = new
        self._configs[trial_id] = config
        self._alive.add(trial_id)
        return trial_id

    def _end(self, trial_ids: Iterable[int], status: str) -> list[int]:
        """Mark trials ended with ``status``; returns those not reported before, sorted."""
        ended = sorted(set(trial_ids) & self._alive)
        self._alive.difference_update(ended)
        self._set_status(ended, status)
        return ended

    def finalize(self) -> list[int]:
        """Trials still alive when the sweep stops (queued, running or waiting for a promotion)."""
        return self._end(list(self._alive), PAUSED)

"""The searcher interface. A searcher decides *what* configuration to try next and may learn from
every result: the scheduler asks it for the configuration of each new trial (``ask``), the tuner tells
it every job's result at every rung (``observe``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from hydra_hpo.errors import SettingsError
from hydra_hpo.objectives import Point
from hydra_hpo.space import SearchSpace


class Searcher(ABC):
    """Suggests configurations of a search space; may learn from observed results.

    Each searcher owns its random generator (seeded by ``seed``) and never touches the global numpy,
    random or torch generators. ``initial_config``, when given, is the first suggestion.

    What a searcher knows is the sequence of ``ask`` and ``observe`` calls and nothing else, so a
    resumed sweep that replays its journal (the same calls in the same order) makes the same decisions:
    ``configs`` (every trial's configuration), ``results`` (per trial, the loss at each resource it
    reached; ``None`` for a failed job), ``points`` (the same results as :class:`Point` rank keys:
    constraint violation and the loss of every objective, see :meth:`observe`) and ``pending`` (trials
    asked for that have no result yet: running, so that asynchronous workers do not duplicate each other).
    """

    def __init__(
        self, space: SearchSpace, seed: int = 0, initial_config: dict[str, Any] | None = None
    ) -> None:
        self.space = space
        self.seed = seed
        self.initial_config = dict(initial_config) if initial_config else None
        self.configs: dict[int, dict[str, Any]] = {}
        self.results: dict[int, dict[int, float | None]] = {}
        self.points: dict[int, dict[int, Point | None]] = {}
        self._pending: dict[int, None] = {}  # an ordered set of trial ids

    def ask(self, trial_id: int) -> dict[str, Any] | None:
        """The configuration of the new trial ``trial_id`` (schedulers call this), or ``None`` when the
        searcher is exhausted."""
        if trial_id in self.configs:
            raise ValueError(f"trial {trial_id} was already given a configuration")
        config = self.suggest()
        if config is not None:
            self.configs[trial_id] = config
            self._pending[trial_id] = None
        return config

    def observe(self, trial_id: int, resource: int, loss: float | None, point: Point | None = None) -> None:
        """A job of trial ``trial_id`` ended at ``resource`` with ``loss`` (minimized; ``None`` when the
        job failed). The tuner calls this for every job, at every rung.

        ``point`` is the result's rank key when the sweep has ``hpo.objectives`` or ``hpo.constraints``
        (``(violation, loss_1, ..., loss_k)``, every objective minimized); without it a loss counts as the
        feasible one-objective point ``(0.0, loss)``. Searchers that model one number read ``results``.
        """
        if trial_id not in self.configs:
            raise ValueError(f"result of trial {trial_id}, which this searcher never suggested")
        if point is not None and loss is None:
            raise ValueError(f"trial {trial_id}: a failed job (loss None) has no point")
        self._pending.pop(trial_id, None)
        self.results.setdefault(trial_id, {})[resource] = loss
        if point is None and loss is not None:
            point = Point((0.0, float(loss)))
        self.points.setdefault(trial_id, {})[resource] = point

    @property
    def pending(self) -> list[int]:
        """Ids of trials asked for that have reported no result yet, oldest first."""
        return list(self._pending)

    @abstractmethod
    def suggest(self) -> dict[str, Any] | None:
        """The next configuration to try, or ``None`` when the searcher is exhausted.

        Learning searchers read ``configs``, ``results`` and ``pending``; call ``ask`` rather than this
        in a sweep, so the searcher knows which trial got the configuration.
        """


class DistinctSearcher(Searcher):
    """A searcher that draws candidates and never suggests the same configuration twice.

    Subclasses implement ``_draw``. ``initial_config``, when given, is suggested first. After
    ``max_retries`` duplicates in a row the space counts as exhausted (a small discrete space) and
    ``suggest`` returns ``None``; so does a ``_draw`` that returns ``None`` (a finite list of candidates).
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial_config: dict[str, Any] | None = None,
        max_retries: int = 1000,
    ) -> None:
        super().__init__(space, seed, initial_config)
        if max_retries < 1:
            raise SettingsError(f"hpo.searcher option max_retries={max_retries} must be >= 1")
        self.max_retries = max_retries
        self._seen: set[tuple] = set()
        self._pending_initial = space.select(self.initial_config) if self.initial_config else None

    @abstractmethod
    def _draw(self) -> dict[str, Any] | None:
        """One candidate configuration (may repeat an earlier one); ``None`` when there are no more."""

    def suggest(self) -> dict[str, Any] | None:
        if self._pending_initial is not None:
            config, self._pending_initial = self._pending_initial, None
            self._seen.add(self.space.key(config))
            return config
        for _ in range(self.max_retries):
            config = self._draw()
            if config is None:
                return None
            key = self.space.key(config)
            if key not in self._seen:
                self._seen.add(key)
                return config
        return None


class ModelBasedSearcher(DistinctSearcher):
    """A distinct searcher that models the results of one resource: the highest rung with at least
    ``n_startup`` results (as BOHB). With one resource (the fifo scheduler) that is every result, and
    before ``n_startup`` results the model is off (random start-up draws, ``_draw``)."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial_config: dict[str, Any] | None = None,
        n_startup: int | None = None,
        max_retries: int = 1000,
    ) -> None:
        super().__init__(space, seed, initial_config, max_retries)
        if n_startup is not None and (isinstance(n_startup, bool) or int(n_startup) != n_startup or n_startup < 2):
            raise SettingsError(f"hpo.searcher option n_startup={n_startup!r} must be an int >= 2 (or null)")
        self.n_startup = int(n_startup) if n_startup is not None else max(10, len(space) + 1)

    def model_resource(self) -> int | None:
        """The highest resource with at least ``n_startup`` results (the model's rung), or ``None``."""
        counts: dict[int, int] = {}
        for by_resource in self.results.values():
            for resource in by_resource:
                counts[resource] = counts.get(resource, 0) + 1
        enough = [resource for resource, count in counts.items() if count >= self.n_startup]
        return max(enough) if enough else None

    def points_at(self, resource: int) -> dict[int, Point | None]:
        """The :class:`Point` of every result at ``resource`` by trial id (``None``: a failed job)."""
        return {trial_id: by_resource[resource] for trial_id, by_resource in self.points.items()
                if resource in by_resource}

    def losses_at(self, resource: int) -> list[tuple[float, int]]:
        """``(loss, trial_id)`` of every result at ``resource``, best first (ties: older trial first);
        a failed job's loss is ``inf``."""
        losses = [(by_resource[resource] if by_resource[resource] is not None else float("inf"), trial_id)
                  for trial_id, by_resource in self.results.items() if resource in by_resource]
        return sorted(losses)

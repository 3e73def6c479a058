"""The searcher interface: ask/tell. A searcher decides *what* configuration to try next."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from hydra_hpo.errors import SettingsError
from hydra_hpo.space import SearchSpace


class Searcher(ABC):
    """Suggests configurations of a search space; may learn from observed results.

    Each searcher owns its random generator (seeded by ``seed``) and never touches the global numpy,
    random or torch generators. ``initial_config``, when given, is the first suggestion.
    """

    def __init__(
        self, space: SearchSpace, seed: int = 0, initial_config: dict[str, Any] | None = None
    ) -> None:
        self.space = space
        self.seed = seed
        self.initial_config = dict(initial_config) if initial_config else None

    @abstractmethod
    def suggest(self) -> dict[str, Any] | None:
        """Return the next configuration to try, or ``None`` when the searcher is exhausted."""

    def observe(self, config: dict[str, Any], resource: int, loss: float | None) -> None:
        """Tell the searcher a result: ``loss`` (minimized; ``None`` for a failed job) at ``resource``."""


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

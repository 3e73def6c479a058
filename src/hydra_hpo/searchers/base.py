"""The searcher interface: ask/tell. A searcher decides *what* configuration to try next."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

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

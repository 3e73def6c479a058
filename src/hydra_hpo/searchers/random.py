"""Random search: independent draws from the space, without repeating a configuration."""

from __future__ import annotations

from typing import Any

import numpy as np

from hydra_hpo.searchers.base import Searcher
from hydra_hpo.space import SearchSpace


class RandomSearcher(Searcher):
    """Samples the space with its own seeded generator; ``None`` once ``max_retries`` draws in a row
    were all configurations already suggested (a small discrete space is exhausted)."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial_config: dict[str, Any] | None = None,
        max_retries: int = 1000,
    ) -> None:
        super().__init__(space, seed, initial_config)
        if max_retries < 1:
            raise ValueError(f"hpo.searcher option max_retries={max_retries} must be >= 1")
        self.max_retries = max_retries
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._seen: set[tuple] = set()
        self._pending_initial = space.select(self.initial_config) if self.initial_config else None

    def suggest(self) -> dict[str, Any] | None:
        if self._pending_initial is not None:
            config, self._pending_initial = self._pending_initial, None
            self._seen.add(self.space.key(config))
            return config
        for _ in range(self.max_retries):
            config = self.space.sample(self._rng)
            key = self.space.key(config)
            if key not in self._seen:
                self._seen.add(key)
                return config
        return None

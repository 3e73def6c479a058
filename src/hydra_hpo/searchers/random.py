"""Random search: independent draws from the space, without repeating a configuration."""

from __future__ import annotations

from typing import Any

import numpy as np

from hydra_hpo.searchers.base import DistinctSearcher
from hydra_hpo.space import SearchSpace


class RandomSearcher(DistinctSearcher):
    """Samples the space with its own seeded generator; ``None`` once ``max_retries`` draws in a row
    were all configurations already suggested (a small discrete space is exhausted)."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial_config: dict[str, Any] | None = None,
        max_retries: int = 1000,
    ) -> None:
        super().__init__(space, seed, initial_config, max_retries)
        self._rng = np.random.Generator(np.random.PCG64(seed))

    def _draw(self) -> dict[str, Any]:
        return self.space.sample(self._rng)

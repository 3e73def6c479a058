"""Quasi-random search: a scrambled Sobol' sequence mapped through the space's unit cube."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import qmc

from hydra_hpo.searchers.base import DistinctSearcher
from hydra_hpo.space import SearchSpace


class SobolSearcher(DistinctSearcher):
    """Suggests the points of a scrambled Sobol' sequence (``scipy.stats.qmc.Sobol``) in order.

    Points that map to an already suggested configuration (discrete spaces) are skipped; after
    ``max_retries`` such points in a row the space counts as exhausted and ``suggest`` returns ``None``.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial_config: dict[str, Any] | None = None,
        max_retries: int = 1000,
    ) -> None:
        super().__init__(space, seed, initial_config, max_retries)
        self._sobol = (
            qmc.Sobol(d=len(space), scramble=True, rng=np.random.default_rng(seed)) if len(space) else None
        )
        self._buffer: list[np.ndarray] = []
        self._drawn = 0

    def _next_point(self) -> np.ndarray:
        # Draw in blocks that keep the total a power of two (1, 2, 4, 8, ...): the same sequence as
        # one point at a time, without scipy's warning about unbalanced Sobol' samples.
        if not self._buffer:
            block = max(1, self._drawn)
            self._buffer = list(self._sobol.random(block))
            self._drawn += block
        return self._buffer.pop(0)

    def _draw(self) -> dict[str, Any]:
        if self._sobol is None:  # an empty space has exactly one configuration: {}
            return {}
        return self.space.from_unit(self._next_point())

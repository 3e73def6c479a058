"""Grid search: every combination of a few values per parameter, in a fixed order."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from hydra_hpo.errors import SettingsError
from hydra_hpo.searchers.base import DistinctSearcher
from hydra_hpo.space import Categorical, Float, Param, SearchSpace


def grid_values(param: Param, num_points: int) -> list[Any]:
    """The grid's values of one parameter.

    Categoricals: all choices. Floats: ``num_points`` values, evenly spaced (geometrically when
    ``log``), bounds included. Ints: every integer when there are at most ``num_points``, else
    ``num_points`` evenly (or geometrically) spaced values rounded to ints, duplicates dropped.
    """
    if isinstance(param, Categorical):
        return list(param.choices)
    spacing = np.geomspace if param.log else np.linspace
    if isinstance(param, Float):
        return [float(v) for v in spacing(param.low, param.high, num_points)]
    if param.high - param.low + 1 <= num_points:
        return list(range(param.low, param.high + 1))
    rounded = np.rint(spacing(param.low, param.high, num_points)).astype(int)
    return [int(v) for v in dict.fromkeys(rounded.tolist())]


class GridSearcher(DistinctSearcher):
    """All combinations of :func:`grid_values`, in ``itertools.product`` order over the space's keys
    (the last key varies fastest). Deterministic: ``seed`` is unused. ``None`` when exhausted."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial_config: dict[str, Any] | None = None,
        num_points: int = 5,
    ) -> None:
        if int(num_points) != num_points or num_points < 1:
            raise SettingsError(f"hpo.searcher option num_points={num_points!r} must be an int >= 1")
        self.num_points = int(num_points)
        self.values = {name: grid_values(p, self.num_points) for name, p in space.items()}
        # the grid ends by itself (_draw returns None); no run of duplicates is longer than the grid
        super().__init__(space, seed, initial_config, max_retries=self.size + 1)
        self._grid: Iterator[tuple] = itertools.product(*self.values.values())

    @property
    def size(self) -> int:
        """Number of grid points (the initial configuration, when off the grid, comes on top)."""
        return math.prod(len(v) for v in self.values.values())

    def _draw(self) -> dict[str, Any] | None:
        combination = next(self._grid, None)
        return None if combination is None else dict(zip(self.values, combination))

"""Grid search: every combination of a few values per parameter, in a fixed order."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from hydra_hpo.errors import SettingsError
from hydra_hpo.searchers.base import Searcher
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


class GridSearcher(Searcher):
    """All combinations of :func:`grid_values`, in ``itertools.product`` order over the space's keys
    (the last key varies fastest). Deterministic: ``seed`` is unused. ``None`` when exhausted."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial_config: dict[str, Any] | None = None,
        num_points: int = 5,
    ) -> None:
        super().__init__(space, seed, initial_config)
        if int(num_points) != num_points or num_points < 1:
            raise SettingsError(f"hpo.searcher option num_points={num_points!r} must be an int >= 1")
        self.num_points = int(num_points)
        self.values = {name: grid_values(p, self.num_points) for name, p in space.items()}
        self._grid: Iterator[tuple] = itertools.product(*self.values.values())
        self._seen: set[tuple] = set()
        self._pending_initial = space.select(self.initial_config) if self.initial_config else None

    @property
    def size(self) -> int:
        """Number of grid points (the initial configuration, when off the grid, comes on top)."""
        return int(np.prod([len(v) for v in self.values.values()], dtype=np.int64))

    def suggest(self) -> dict[str, Any] | None:
        if self._pending_initial is not None:
            config, self._pending_initial = self._pending_initial, None
            self._seen.add(self.space.key(config))
            return config
        for combination in self._grid:
            config = dict(zip(self.values, combination))
            key = self.space.key(config)
            if key not in self._seen:
                self._seen.add(key)
                return config
        return None

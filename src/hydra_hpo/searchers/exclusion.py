"""The exclusion radius of the model-based searchers (``min_distance``): how close a suggestion may come to a
configuration already tried. A noisy training run next to a tried one teaches little (and on a recorded table
it replays the same row), so a model that piles its suggestions up next to the incumbent wastes its trials."""

from __future__ import annotations

import math

import numpy as np

from hydra_hpo.errors import SettingsError
from hydra_hpo.space import Categorical, SearchSpace


def check_min_distance(min_distance: float | str) -> float | str:
    """``"auto"`` or a number >= 0 (as a float); else a one-line SettingsError."""
    if min_distance != "auto" and (isinstance(min_distance, (bool, str)) or not min_distance >= 0):
        raise SettingsError(f"hpo.searcher option min_distance={min_distance!r} must be 'auto' or a number >= 0")
    return min_distance if min_distance == "auto" else float(min_distance)


def exclusion_radius(n: int, dim: int, cells: int = 1) -> float:
    """The radius of ``n`` equal balls whose volumes add up to that of ``cells`` unit cubes in ``dim``
    dimensions, ``(Gamma(dim/2 + 1) cells / (pi^(dim/2) n))^(1/dim)``: each tried configuration keeps its
    share of the space to itself, so the exclusion shrinks as the sweep grows; ``0`` when ``dim`` is 0."""
    if dim == 0:
        return 0.0
    return math.exp((math.lgamma(dim / 2 + 1) + math.log(cells) - dim / 2 * math.log(math.pi) - math.log(n)) / dim)


def auto_radius(space: SearchSpace, n: int) -> float:
    """``min_distance="auto"`` after ``n`` configurations: :func:`exclusion_radius` over the numeric
    parameters, one unit cube per combination of categorical values (configurations that differ in a
    categorical are apart whatever their numeric values: its features add no volume)."""
    numeric = sum(1 for _, p in space.items() if not isinstance(p, Categorical))
    cells = math.prod(len(p.choices) for _, p in space.items() if isinstance(p, Categorical))
    return exclusion_radius(n, numeric, cells)


def radius_after(min_distance: float | str, space: SearchSpace, n: int) -> float:
    """The exclusion radius after ``n`` configurations: :func:`auto_radius` for ``"auto"``, else the number."""
    return auto_radius(space, n) if min_distance == "auto" else float(min_distance)


def far_in_unit_cube(space: SearchSpace, candidates: np.ndarray, tried: np.ndarray, radius: float) -> np.ndarray:
    """Whether each candidate (rows of ``SearchSpace.to_unit`` coordinates) lies at least ``radius`` from
    every tried configuration with the same categorical values, in the numeric coordinates."""
    if radius == 0 or len(tried) == 0:
        return np.ones(len(candidates), dtype=bool)
    categorical = np.array([isinstance(p, Categorical) for _, p in space.items()])
    sizes = np.array([len(p.choices) for _, p in space.items() if isinstance(p, Categorical)])

    def choices(unit: np.ndarray) -> np.ndarray:  # each categorical's choice index (its bin of [0, 1])
        return np.minimum(np.floor(unit[:, categorical] * sizes), sizes - 1)

    same = (choices(candidates)[:, None, :] == choices(tried)[None, :, :]).all(-1)
    d2 = ((candidates[:, None, ~categorical] - tried[None, :, ~categorical]) ** 2).sum(-1)
    return ~((d2 < radius ** 2 - 1e-12) & same).any(1)

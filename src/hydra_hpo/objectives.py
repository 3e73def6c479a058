"""Several objectives and constraints: directions, feasibility, non-dominated sorting and hypervolume.

The one comparison every place that ranks goes through (rungs, incumbent, summary). A sweep with one
objective and no constraints never builds an :class:`Objectives`; its schedulers rank plain floats.
A result's :class:`Point` is its loss vector (every objective minimized) with its constraint violation;
feasible points rank first, by non-dominated sorting with a crowding-distance tie-break (NSGA-II's, as
MO-ASHA, Schmucker et al. 2021), then infeasible points by how far they violate their bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hydra_hpo.errors import SettingsError

# Metrics every training run reports (hydra_hpo.training.measure and the recorder's logged metrics).
MEASURED_METRICS = ("train_seconds", "n_params", "inference_ms", "peak_memory_mb")
KNOWN_METRICS = ("validation_error", "validation_loss", "train_loss", *MEASURED_METRICS)
DIRECTIONS = ("min", "max")
BOUND_KEYS = ("min", "max")


class Point(tuple):
    """``(violation, loss_1, ..., loss_k)``: a result's rank key; ``violation == 0`` means feasible."""

    @property
    def violation(self) -> float:
        return self[0]

    @property
    def losses(self) -> tuple[float, ...]:
        return tuple(self[1:])

    @property
    def feasible(self) -> bool:
        return self[0] == 0.0


@dataclass(frozen=True)
class Objectives:
    """Named objectives (``{name: min|max}``, in order) and bounds (``{name: {min: a, max: b}}``)."""

    directions: dict[str, str]
    constraints: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.directions)

    @property
    def metrics(self) -> list[str]:
        """Every metric a result must carry: the objectives', then the constrained ones."""
        return [*self.directions, *(n for n in self.constraints if n not in self.directions)]

    @property
    def multi(self) -> bool:
        return len(self.directions) > 1

    def signs(self) -> np.ndarray:
        return np.array([1.0 if d == "min" else -1.0 for d in self.directions.values()])

    def violation(self, metrics: Mapping[str, float]) -> float:
        """How far ``metrics`` lie outside the bounds, each relative to its bound's size (0: feasible)."""
        total = 0.0
        for name, bounds in self.constraints.items():
            value = float(metrics[name])
            if math.isnan(value):
                return math.inf
            for key, bound in bounds.items():
                excess = (value - bound) if key == "max" else (bound - value)
                if excess > 0:
                    total += excess / max(abs(bound), 1e-12)
        return total

    def feasible(self, metrics: Mapping[str, float]) -> bool:
        return self.violation(metrics) == 0.0

    def missing(self, metrics: Mapping[str, float]) -> list[str]:
        """The metrics this sweep needs that ``metrics`` lacks."""
        return [name for name in self.metrics if name not in metrics]

    def point(self, metrics: Mapping[str, float]) -> Point:
        """The rank key of a result's ``metrics`` (raises KeyError for a missing one, see :meth:`missing`)."""
        losses = [sign * float(metrics[name]) for sign, name in zip(self.signs(), self.directions)]
        return Point((self.violation(metrics), *losses))

    def values(self, metrics: Mapping[str, float]) -> list[float]:
        """The objectives' raw values, in order."""
        return [float(metrics[name]) for name in self.directions]


def parse_objectives(objectives: Any, constraints: Any, *, metric: str = "validation_error", mode: str = "min",
                     known: Sequence[str] | None = None) -> Objectives | None:
    """Validate ``hpo.objectives`` and ``hpo.constraints``; None when both are unset (one objective, no bounds).

    Without ``hpo.objectives`` the single objective is ``metric`` in direction ``mode``. With ``known``,
    every named metric must be one of them. Raises :class:`SettingsError` with one line naming the key.
    """
    if objectives is None and constraints is None:
        return None
    if objectives is None:
        directions = {metric: mode}
    else:
        directions = _directions(objectives)
    bounds = {} if constraints is None else _constraints(constraints)
    if known is not None:
        for key, names in (("objectives", directions), ("constraints", bounds)):
            for name in names:
                if name not in known:
                    raise SettingsError(f"hpo.{key}: unknown metric {name!r}; the runs report "
                                        f"{', '.join(sorted(known))}")
    return Objectives(directions, bounds)


def _directions(objectives: Any) -> dict[str, str]:
    if isinstance(objectives, Sequence) and not isinstance(objectives, str):
        names = [str(n) for n in objectives]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SettingsError(f"hpo.objectives: {twice[0]!r} is listed twice; list each metric once")
    if not isinstance(objectives, Mapping):
        raise SettingsError(f"hpo.objectives={objectives!r}: must be a mapping of metric to direction, "
                            "e.g. '{validation_error: min, inference_ms: min}'")
    if not objectives:
        raise SettingsError("hpo.objectives={}: empty; name at least one metric, e.g. '{validation_error: min}', "
                            "or set it to null")
    directions: dict[str, str] = {}
    for name, direction in objectives.items():
        if direction not in DIRECTIONS:
            raise SettingsError(f"hpo.objectives.{name}={direction!r}: the direction must be min or max")
        directions[str(name)] = str(direction)
    return directions


def _constraints(constraints: Any) -> dict[str, dict[str, float]]:
    if not isinstance(constraints, Mapping):
        raise SettingsError(f"hpo.constraints={constraints!r}: must be a mapping of metric to bounds, "
                            "e.g. '{n_params: {max: 100000}}'")
    if not constraints:
        raise SettingsError("hpo.constraints={}: empty; bound at least one metric, e.g. '{n_params: {max: 100000}}', "
                            "or set it to null")
    bounds: dict[str, dict[str, float]] = {}
    for name, spec in constraints.items():
        if not isinstance(spec, Mapping) or not spec:
            raise SettingsError(f"hpo.constraints.{name}={spec!r}: must be bounds, e.g. {{max: 100000}} or "
                                "{min: 0.1, max: 2}")
        unknown = [k for k in spec if k not in BOUND_KEYS]
        if unknown:
            raise SettingsError(f"hpo.constraints.{name}: unknown bound {unknown[0]!r}; use min and/or max")
        entry: dict[str, float] = {}
        for key, bound in spec.items():
            if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
                raise SettingsError(f"hpo.constraints.{name}.{key}={bound!r}: must be a finite number")
            entry[str(key)] = float(bound)
        if "min" in entry and "max" in entry and entry["min"] > entry["max"]:
            raise SettingsError(f"hpo.constraints.{name}: min={entry['min']} exceeds max={entry['max']}")
        bounds[str(name)] = entry
    return bounds


# ---------------------------------------------------------------------------------------- sorting
def non_dominated_fronts(losses: np.ndarray) -> list[np.ndarray]:
    """Indices of ``losses`` (n x k, minimized) grouped into fronts, the non-dominated first."""
    n = len(losses)
    if n == 0:
        return []
    le = (losses[:, None, :] <= losses[None, :, :]).all(axis=2)
    lt = (losses[:, None, :] < losses[None, :, :]).any(axis=2)
    dominates = le & lt  # dominates[i, j]: i dominates j
    counts = dominates.sum(axis=0)
    remaining = np.ones(n, dtype=bool)
    fronts = []
    while remaining.any():
        front = np.flatnonzero(remaining & (counts == 0))
        fronts.append(front)
        remaining[front] = False
        counts = counts - dominates[front].sum(axis=0)
    return fronts


def crowding_distance(losses: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each point of one front (boundary points: inf)."""
    n, k = losses.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(losses[:, j], kind="stable")
        column = losses[order, j]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def rank_points(points: Mapping[int, Point | None]) -> list[int]:
    """Ids best first: feasible ones front by front (larger crowding distance first, then the older trial),
    then infeasible ones by violation; ``None`` (failed) left out."""
    ids = sorted(i for i, p in points.items() if p is not None)
    feasible = [i for i in ids if points[i].feasible]
    infeasible = sorted((i for i in ids if not points[i].feasible), key=lambda i: (points[i].violation, i))
    if not feasible:
        return infeasible
    losses = np.array([points[i].losses for i in feasible], dtype=float)
    order: list[int] = []
    for front in non_dominated_fronts(losses):
        crowding = crowding_distance(losses[front])
        members = sorted(range(len(front)), key=lambda m: (-crowding[m], feasible[front[m]]))
        order.extend(feasible[front[m]] for m in members)
    return order + infeasible


def pareto_front(losses: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of ``losses`` (minimized)."""
    fronts = non_dominated_fronts(np.asarray(losses, dtype=float))
    return fronts[0] if fronts else np.array([], dtype=int)


def hypervolume(losses: np.ndarray, reference: Sequence[float]) -> float:
    """The volume dominated by ``losses`` (n x k minimized, k = 1, 2 or 3) and bounded by ``reference``."""
    points = np.asarray(losses, dtype=float).reshape(-1, len(reference))
    ref = np.asarray(reference, dtype=float)
    points = points[(points < ref).all(axis=1)]
    if len(points) == 0:
        return 0.0
    k = points.shape[1]
    if k == 1:
        return float(ref[0] - points[:, 0].min())
    if k == 2:
        points = points[np.argsort(points[:, 0], kind="stable")]
        volume, best_y = 0.0, ref[1]
        for x, y in points:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return float(volume)
    if k == 3:  # slices along the third objective, each a 2-D hypervolume
        points = points[np.argsort(points[:, 2], kind="stable")]
        volume = 0.0
        for i in range(len(points)):
            top = points[i + 1, 2] if i + 1 < len(points) else ref[2]
            if top > points[i, 2]:
                volume += hypervolume(points[: i + 1, :2], ref[:2]) * (top - points[i, 2])
        return float(volume)
    raise ValueError(f"hypervolume is implemented for 1 to 3 objectives, got {k}")


def duplicate_objective(override: str) -> str | None:
    """The first metric listed twice in a command-line ``hpo.objectives={...}`` override (whose parsers keep
    only the last of duplicate keys, silently), else None."""
    import yaml

    key, _, text = override.partition("=")
    if not key.lstrip("+~").endswith("objectives") or not text.strip().startswith("{"):
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None  # Hydra's parser reports what is not a mapping
    if not isinstance(node, yaml.MappingNode):
        return None
    seen = [str(k.value) for k, _ in node.value]
    twice = [name for i, name in enumerate(seen) if name in seen[:i]]
    return twice[0] if twice else None


def check_objectives(objectives: Any, constraints: Any, *, metric: str, mode: str,
                     overrides: Sequence[str] = ()) -> Objectives | None:
    """Validate the sweep's objectives and constraints against the metrics every run reports (and
    ``metric``) and the raw command-line ``overrides``; raises :class:`SettingsError` before any job."""
    for override in overrides:
        name = duplicate_objective(override)
        if name is not None:
            raise SettingsError(f"hpo.objectives: {name!r} is listed twice; list each metric once")
    parsed = parse_objectives(objectives, constraints, metric=metric, mode=mode, known=(*KNOWN_METRICS, metric))
    if parsed is not None and objectives is not None and parsed.directions.get(metric, mode) != mode:
        raise SettingsError(f"hpo.objectives.{metric}={parsed.directions[metric]} contradicts hpo.mode={mode}; "
                            f"set hpo.mode={parsed.directions[metric]} or drop one of them")
    return parsed

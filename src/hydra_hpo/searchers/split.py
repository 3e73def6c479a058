"""TPE's split of observations into good and bad over several objectives and constraints.

With one objective and no constraints this is the plain sort by loss. With several objectives it is
MOTPE's split (Ozaki et al. 2020/2022, as Optuna's ``TPESampler``): whole non-dominated fronts while they
fit in the good group, and in the front that straddles the split the members that add the most
hypervolume (greedy hypervolume subset selection). Constraints as Optuna's ``constraints_func``: every
feasible result ranks before every infeasible one, infeasible ones by how far they violate their bounds;
so the good group holds infeasible results only while fewer than ``n_good`` are feasible, and then the
least violating ones, which leads the search towards the feasible region.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from hydra_hpo.objectives import Point, crowding_distance, hypervolume, non_dominated_fronts


def split_order(points: Mapping[int, Point | None], n_good: int) -> list[int]:
    """Trial ids ordered so that the first ``n_good`` are the good observations.

    Feasible results with finite losses first: for one objective by loss, for several front by front,
    the front that straddles ``n_good`` led by its greedy hypervolume subset; then infeasible ones by
    violation; then ``None`` (failed jobs). Ties go to the older trial (the lower id).
    """
    ids = sorted(points)
    feasible = [i for i in ids if points[i] is not None and points[i].feasible
                and all(math.isfinite(v) for v in points[i].losses)]
    chosen = set(feasible)
    infeasible = sorted((i for i in ids if points[i] is not None and i not in chosen),
                        key=lambda i: (points[i].violation if points[i].violation > 0 else math.inf, i))
    failed = [i for i in ids if points[i] is None]
    return _order_feasible(feasible, points, n_good) + infeasible + failed


def _order_feasible(feasible: list[int], points: Mapping[int, Point | None], n_good: int) -> list[int]:
    if not feasible:
        return []
    losses = np.array([points[i].losses for i in feasible], dtype=float)
    if losses.shape[1] == 1:
        return [feasible[m] for m in np.lexsort((np.array(feasible), losses[:, 0]))]
    order: list[int] = []
    for front in non_dominated_fronts(losses):  # each front's indices ascend, so older trials come first
        room = n_good - len(order)
        if 0 < room < len(front):
            lead = greedy_hypervolume_subset(losses[front], room)
            rest = sorted(set(range(len(front))) - set(lead))
            order.extend(feasible[front[m]] for m in [*lead, *rest])
        else:
            order.extend(feasible[m] for m in front)
    return order


def _reference(losses: np.ndarray) -> np.ndarray:
    """A reference point just beyond the worst of ``losses`` (a tenth of the range, or of the size)."""
    worst, best = losses.max(axis=0), losses.min(axis=0)
    span = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1e-12))
    return worst + 0.1 * span


def greedy_hypervolume_subset(losses: np.ndarray, size: int) -> list[int]:
    """Indices of ``size`` rows of ``losses`` (one front, minimized) picked greedily, each adding the most
    hypervolume to those picked before (the earlier row on a tie). More than three objectives, where
    :func:`hypervolume` stops: the largest crowding distance instead."""
    n, k = losses.shape
    if k > 3:
        crowding = crowding_distance(losses)
        return sorted(range(n), key=lambda m: (-crowding[m], m))[:size]
    reference = _reference(losses)
    picked: list[int] = []
    volume = 0.0
    for _ in range(min(size, n)):
        best, best_gain = -1, -math.inf
        for m in range(n):
            if m in picked:
                continue
            gain = hypervolume(losses[[*picked, m]], reference) - volume
            if gain > best_gain:
                best, best_gain = m, gain
        picked.append(best)
        volume += best_gain
    return picked

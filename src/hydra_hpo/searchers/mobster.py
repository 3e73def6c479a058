"""MOBSTER (Klein et al. 2020, "Model-based asynchronous hyperparameter and neural architecture search"): one
Gaussian process over configuration x resource, fitted on every rung's results, proposing new configurations
for asynchronous successive halving by expected improvement at one resource."""

from __future__ import annotations

import math

import numpy as np

from hydra_hpo.searchers.gp import GPSearcher


class MobsterSearcher(GPSearcher):
    """The GP of :class:`GPSearcher` with the resource as one more input: ``log r`` scaled to [0, 1] between
    the smallest and the largest resource with results, so results of every rung inform one model.

    Expected improvement is evaluated at the acquisition resource ``r_acq``: the highest resource with at
    least ``n_startup`` results (Syne Tune's default ``resource_acq="bohb"``), improving on the best loss
    seen there; before any resource has that many results, configurations are random draws. Failed jobs
    count as the worst loss of their resource, pending trials as the worst loss at ``r_acq`` (a constant
    liar). Options and the cap on observations (``max_points``: the best half of ``r_acq``'s results and a
    random subset of all the others) as for ``gp``.
    """

    def _training_data(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None] | None:
        r_acq = self.model_resource()
        if r_acq is None:
            return None
        resources = sorted({resource for by_resource in self.results.values() for resource in by_resource})
        low, high = math.log(resources[0]), math.log(resources[-1])

        def resource_feature(resource: int) -> float:
            return (math.log(resource) - low) / (high - low) if high > low else 0.0

        worst: dict[int, float] = {}
        for by_resource in self.results.values():
            for resource, loss in by_resource.items():
                if loss is not None and math.isfinite(loss):
                    worst[resource] = max(worst.get(resource, -math.inf), loss)
        rows = []  # (rank key, loss, trial id, resource): r_acq's results best first, then the others
        for trial_id, by_resource in self.results.items():
            for resource, loss in by_resource.items():
                value = loss if loss is not None and math.isfinite(loss) else worst.get(resource, 1.0)
                rows.append(((resource != r_acq, value, trial_id, resource), value, trial_id, resource))
        rows.sort(key=lambda row: row[0])
        keep = self._cap(rows, len(rows))
        liar = worst.get(r_acq, 1.0)
        x = np.stack([np.append(self._feature(t), resource_feature(r)) for _, _, t, r in keep]
                     + [np.append(self._feature(t), resource_feature(r_acq)) for t in self.pending])
        y = np.array([value for _, value, _, _ in keep] + [liar] * len(self.pending))
        at_acq = [value for _, value, _, resource in keep if resource == r_acq]
        return x, y, min(at_acq), np.array([resource_feature(r_acq)])

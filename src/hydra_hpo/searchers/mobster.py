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
    seen there; before any resource has that many results, configurations are random draws. The targets are
    all rungs' losses warped together (``output_warping``), so a trial's targets keep the order of its losses
    across rungs; failed jobs count as the worst loss, pending trials as the worst target at ``r_acq`` (a
    constant liar). Options, the exclusion radius and the cap on observations (``max_points``: the best half
    of ``r_acq``'s results and a random subset of all the others) as for ``gp``.
    """

    def _training_data(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None] | None:
        r_acq = self.model_resource()
        if r_acq is None:
            return None
        resources = sorted({resource for by_resource in self.results.values() for resource in by_resource})
        low, high = math.log(resources[0]), math.log(resources[-1])

        def resource_feature(resource: int) -> float:
            return (math.log(resource) - low) / (high - low) if high > low else 0.0

        results = [(trial_id, resource, math.inf if loss is None else loss)
                   for trial_id, by_resource in self.results.items() for resource, loss in by_resource.items()]
        # one warping of all results together: a trial's targets at its rungs keep the order of its losses (a
        # per-rung ranking would put the worst of the promoted few at the top rung above most of rung 1)
        values = self._warp(np.array([loss for _, _, loss in results]))
        rows = sorted(((resource != r_acq, float(value), trial_id, resource)
                       for (trial_id, resource, _), value in zip(results, values)))
        # r_acq's results best first, then the others best first
        keep = self._cap(rows, len(rows))
        at_acq = [value for is_other, value, _, _ in rows if not is_other]
        x = np.stack([np.append(self._feature(t), resource_feature(r)) for _, _, t, r in keep]
                     + [np.append(self._feature(t), resource_feature(r_acq)) for t in self.pending])
        y = np.array([value for _, value, _, _ in keep] + [max(at_acq)] * len(self.pending))
        return x, y, min(at_acq), np.array([resource_feature(r_acq)])

"""Gaussian-process Bayesian optimization: a Matern-5/2 ARD kernel fitted by marginal likelihood
(scikit-learn's ``GaussianProcessRegressor``), expected improvement maximized over quasi-random candidates
and a local search around the best of them, pending trials handled by a constant liar."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.stats import norm, qmc
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from hydra_hpo.searchers.base import ModelBasedSearcher
from hydra_hpo.space import Categorical, Float, SearchSpace

_LOCAL_STEPS = (0.1, 0.03, 0.01)  # local-search step sizes on the unit cube, coarse to fine
_LOCAL_STARTS = 5
_HYPER_POINTS = 128  # observations the marginal likelihood is maximized on (cost: cubic in this)


class _Posterior:
    """The GP posterior of standardized losses ``y`` at features ``x`` under a fitted kernel
    (amplitude * Matern + white noise); ``predict`` gives the noise-free mean and standard deviation."""

    def __init__(self, kernel: Any, x: np.ndarray, y: np.ndarray) -> None:
        self.kernel, self.x = kernel, x
        self.cholesky = cho_factor(kernel(x) + 1e-8 * np.eye(len(x)), lower=True)
        self.alpha = cho_solve(self.cholesky, y)

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cross = self.kernel.k1(features, self.x)  # the white-noise term is zero between distinct points
        mean = cross @ self.alpha
        v = solve_triangular(self.cholesky[0], cross.T, lower=True)
        var = self.kernel.k1.diag(features) - np.einsum("ij,ij->j", v, v)
        return mean, np.sqrt(np.maximum(var, 1e-12))


class GPSearcher(ModelBasedSearcher):
    """GP-BO on the space's features: numbers scaled to [0, 1] (log scale for log parameters, integers at
    their rounded values) and one-hot categoricals, so the kernel sees what a configuration really is.

    The GP models the (standardized) losses of the model's rung (see :class:`ModelBasedSearcher`); failed
    jobs and pending trials count as the worst loss seen (a constant liar, so parallel workers spread
    out). Kernel hyperparameters (an amplitude, one length scale per feature, a noise level) are refitted
    by maximizing the marginal likelihood (L-BFGS-B, on at most 128 of the observations) whenever the data
    grew by ``refit_growth`` since the last fit, and reused (one Cholesky factorization) in between. At most
    ``max_points`` observations enter the posterior: the best half and the most recent others. Expected improvement is maximized over ``n_candidates``
    scrambled Sobol' points plus Gaussian steps around the best ``5`` of them.
    """

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        initial_config: dict[str, Any] | None = None,
        n_startup: int | None = None,
        n_candidates: int = 512,
        max_points: int = 256,
        refit_growth: float = 0.1,
        max_retries: int = 1000,
    ) -> None:
        super().__init__(space, seed, initial_config, n_startup, max_retries)
        if int(n_candidates) != n_candidates or n_candidates < 1:
            raise ValueError(f"hpo.searcher option n_candidates={n_candidates!r} must be an int >= 1")
        if int(max_points) != max_points or max_points < 2:
            raise ValueError(f"hpo.searcher option max_points={max_points!r} must be an int >= 2")
        if not refit_growth >= 0:
            raise ValueError(f"hpo.searcher option refit_growth={refit_growth!r} must be >= 0")
        self.n_candidates = int(n_candidates)
        self.max_points = int(max_points)
        self.refit_growth = float(refit_growth)
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._sobol = qmc.Sobol(d=max(1, len(space)), scramble=True, rng=np.random.default_rng(seed))
        self._kernel: Any = None  # fitted kernel hyperparameters, reused until the data grows
        self._fitted_on = 0
        self._encoded: dict[int, np.ndarray] = {}  # features of each trial's configuration

    def _draw(self) -> dict[str, Any]:
        return self.space.sample(self._rng)

    def suggest(self) -> dict[str, Any] | None:
        if self._pending_initial is not None or len(self.space) == 0:
            return super().suggest()
        resource = self.model_resource()
        if resource is not None:
            gp, best = self._fit(resource)
            for u in self._ranked_candidates(gp, best):
                config = self.space.from_unit(u)
                key = self.space.key(config)
                if key not in self._seen:
                    self._seen.add(key)
                    return config
        return super().suggest()  # random start-up draws (None once a small space is exhausted)

    def _fit(self, resource: int) -> tuple[_Posterior, float]:
        losses = self.losses_at(resource)
        keep = losses[: self.max_points // 2]
        kept = {trial_id for _, trial_id in keep}
        recent = sorted((item for item in losses if item[1] not in kept), key=lambda item: -item[1])
        keep += recent[: self.max_points - len(keep)]
        finite = [loss for loss, _ in losses if math.isfinite(loss)]
        worst = max(finite) if finite else 1.0
        ids = [trial_id for _, trial_id in keep] + self.pending
        y = np.array([loss if math.isfinite(loss) else worst for loss, _ in keep] + [worst] * len(self.pending))
        shift, scale = float(np.mean(y)), float(np.std(y)) or 1.0
        y = (y - shift) / scale
        for trial_id in ids:
            if trial_id not in self._encoded:
                self._encoded[trial_id] = self.space.encode(self.configs[trial_id])
        x = np.stack([self._encoded[trial_id] for trial_id in ids])
        if self._kernel is None or len(losses) >= (1 + self.refit_growth) * self._fitted_on:
            self._fitted_on = len(losses)
            n_fit = min(len(keep), _HYPER_POINTS)  # the best and the most recent, as kept above
            kernel = (ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.full(x.shape[1], 0.5), (1e-2, 1e2), nu=2.5)
                      + WhiteKernel(1e-2, (1e-6, 1e0)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self._kernel = GaussianProcessRegressor(kernel).fit(x[:n_fit], y[:n_fit]).kernel_
        best = (min(finite) - shift) / scale if finite else float(np.max(y))
        return _Posterior(self._kernel, x, y), best

    def _ranked_candidates(self, gp: _Posterior, best: float) -> list[np.ndarray]:
        """Candidates on the unit cube, highest expected improvement first."""
        candidates = self._sobol.random(self.n_candidates)
        scores = self._expected_improvement(gp, best, candidates)
        starts = candidates[np.argsort(-scores)[:_LOCAL_STARTS]]
        pool, pool_scores = [candidates], [scores]
        for step in _LOCAL_STEPS:
            moves = np.repeat(starts, 16, axis=0)
            moves = np.clip(moves + step * self._rng.standard_normal(moves.shape), 0.0, 1.0)
            move_scores = self._expected_improvement(gp, best, moves)
            pool.append(moves)
            pool_scores.append(move_scores)
            merged = np.vstack([starts, moves])
            merged_scores = np.concatenate([self._expected_improvement(gp, best, starts), move_scores])
            starts = merged[np.argsort(-merged_scores)[:_LOCAL_STARTS]]
        points, all_scores = np.vstack(pool), np.concatenate(pool_scores)
        return list(points[np.argsort(-all_scores, kind="stable")])

    def _expected_improvement(self, gp: _Posterior, best: float, unit: np.ndarray) -> np.ndarray:
        mean, std = gp.predict(self._features(unit))
        z = (best - mean) / std
        return (best - mean) * norm.cdf(z) + std * norm.pdf(z)

    def _features(self, unit: np.ndarray) -> np.ndarray:
        """``SearchSpace.encode`` of ``from_unit`` of each row, vectorized (integers rounded, one-hot choices)."""
        columns = []
        for j, (_, p) in enumerate(self.space.items()):
            u = unit[:, j]
            if isinstance(p, Categorical):
                k = len(p.choices)
                columns.append(np.eye(k)[np.minimum((u * k).astype(int), k - 1)])
                continue
            if isinstance(p, Float):
                columns.append(u[:, None])
                continue
            low, high = float(p.low), float(p.high)
            if p.log:
                values = np.floor(np.exp(math.log(low) + u * (math.log(high + 1) - math.log(low))))
                values = np.clip(values, low, high)
                scaled = (np.log(values) - math.log(low)) / (math.log(high) - math.log(low)) if high > low else 0 * u
            else:
                values = np.clip(np.floor(low + u * (high + 1 - low)), low, high)
                scaled = (values - low) / (high - low) if high > low else 0 * u
            columns.append(np.asarray(scaled, dtype=float)[:, None])
        return np.hstack(columns)

"""Gaussian-process Bayesian optimization: a Matern-5/2 ARD GP (numpy/scipy, see ``gaussian_process``)
fitted by maximum a posteriori marginal likelihood, log expected improvement maximized over scrambled Sobol'
candidates and L-BFGS-B from the best of them, pending trials handled by a constant liar, and no suggestion
within an exclusion radius of a configuration already tried."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc
from threadpoolctl import ThreadpoolController

from hydra_hpo.errors import SettingsError
from hydra_hpo.searchers.base import ModelBasedSearcher
from hydra_hpo.searchers.exclusion import check_min_distance, radius_after
from hydra_hpo.searchers.gaussian_process import (KernelParams, Posterior, fit_kernel, log_ei, log_ei_grad,
                                                  quantile_normal)
from hydra_hpo.space import Categorical, Float, SearchSpace

_LOCAL_STARTS = 5  # best Sobol' candidates the local search starts from
_LOCAL_ITERATIONS = 15  # L-BFGS-B iterations of the local search (all starts at once)
_THREADS: ThreadpoolController | None = None
OUTPUT_WARPINGS = ("quantile", "none")


def _one_blas_thread():
    """A context with BLAS on one thread: our matrices are small (<= a few hundred rows), and a
    multithreaded BLAS on a busy machine spends 10-100x longer waiting for its threads than computing."""
    global _THREADS
    if _THREADS is None:
        _THREADS = ThreadpoolController()
    return _THREADS.limit(limits=1, user_api="blas")


class GPSearcher(ModelBasedSearcher):
    """GP-BO on the space's features: numbers scaled to [0, 1] (log scale for log parameters, integers at
    their rounded values) and one-hot categoricals, so the kernel sees what a configuration really is.

    The GP models the losses of the model's rung (see :class:`ModelBasedSearcher`), by default as the normal
    scores of their ranks (``output_warping``, below); failed jobs and pending trials count as the worst
    loss seen (a constant liar, so parallel workers spread out).
    Kernel hyperparameters (one inverse squared length scale per feature, an amplitude, a noise variance,
    with Optuna's priors) are refitted by L-BFGS-B, warm-started from the previous fit, whenever the results
    grew by ``refit_growth`` (10%: every result early on, every 100th at 1,000) and reused in between (one
    Cholesky factorization per suggestion). At most ``max_points`` observations enter the model: the best
    half, and a random subset of the others (drawn afresh each suggestion from a generator seeded by the
    searcher's seed and the number of results, so a replay picks the same). Log expected improvement is
    evaluated at ``n_candidates`` scrambled Sobol' points; L-BFGS-B then climbs it from the best 5 along the
    float parameters (integers and categoricals keep the candidate's values).

    The best candidate at least ``min_distance`` (Euclidean, in the features) from every configuration tried
    so far, pending ones included, is suggested; when none is, a random draw. ``"auto"``: the radius of as
    many equal balls as configurations tried that together fill the space's volume
    (:func:`~hydra_hpo.searchers.exclusion.auto_radius`: the unit cube of the non-categorical parameters
    once per combination of categorical values, since two configurations that differ in a categorical lie
    >= sqrt(2) apart in its one-hot features anyway; 0.26 for 300 configurations of 5 numeric parameters
    and one categorical of 2), so the model cannot pile its suggestions up next to the incumbent: a noisy
    training run near a tried one teaches little (and on a recorded table it replays the same row), while
    the radius shrinks as the sweep grows. ``0`` turns it off (a smooth, noise-free loss is then refined to
    any precision, with ``output_warping="none"``).
    ``output_warping="quantile"`` (the default) fits the GP on the normal scores of the losses' ranks
    (:func:`~hydra_hpo.searchers.gaussian_process.quantile_normal`): a few diverged runs at chance level no
    longer squeeze every good result into one end of the scale; ``"none"``: the standardized losses.
    ``random_fraction`` of the suggestions are random draws.
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
        output_warping: str = "quantile",
        random_fraction: float = 0.0,
        min_distance: float | str = "auto",
        max_retries: int = 1000,
    ) -> None:
        super().__init__(space, seed, initial_config, n_startup, max_retries)
        if isinstance(n_candidates, bool) or int(n_candidates) != n_candidates or n_candidates < 1:
            raise SettingsError(f"hpo.searcher option n_candidates={n_candidates!r} must be an int >= 1")
        if isinstance(max_points, bool) or int(max_points) != max_points or max_points < 2:
            raise SettingsError(f"hpo.searcher option max_points={max_points!r} must be an int >= 2")
        if not refit_growth >= 0:
            raise SettingsError(f"hpo.searcher option refit_growth={refit_growth!r} must be >= 0")
        if output_warping not in OUTPUT_WARPINGS:
            raise SettingsError(f"hpo.searcher option output_warping={output_warping!r} must be one of "
                                f"{', '.join(OUTPUT_WARPINGS)}")
        self.output_warping = output_warping
        if isinstance(random_fraction, bool) or not 0.0 <= random_fraction <= 1.0:
            raise SettingsError(f"hpo.searcher option random_fraction={random_fraction!r} must be in [0, 1]")
        self.random_fraction = float(random_fraction)
        self.min_distance = check_min_distance(min_distance)
        self.n_candidates = int(n_candidates)
        self.max_points = int(max_points)
        self.refit_growth = float(refit_growth)
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._sobol = qmc.Sobol(d=max(1, len(space)), scramble=True, rng=np.random.default_rng(seed))
        self._params: KernelParams | None = None  # the last fit, reused until the data grows
        self._fitted_on = 0
        self._encoded: dict[int, np.ndarray] = {}  # features of each trial's configuration
        # (parameter index, feature column) of each float parameter: the local search moves these
        self._float_columns: list[tuple[int, int]] = []
        column = 0
        for index, (_, p) in enumerate(space.items()):
            if isinstance(p, Float):
                self._float_columns.append((index, column))
            column += len(p.choices) if isinstance(p, Categorical) else 1

    def _draw(self) -> dict[str, Any]:
        return self.space.sample(self._rng)

    def suggest(self) -> dict[str, Any] | None:
        if self._pending_initial is not None or len(self.space) == 0:
            return super().suggest()
        with _one_blas_thread():
            return self._suggest_with_model()

    def _suggest_with_model(self) -> dict[str, Any] | None:
        if self.random_fraction > 0 and self._rng.random() < self.random_fraction:
            return super().suggest()
        model = self._model()
        if model is not None:
            posterior, best, extra = model
            candidates = self._ranked_candidates(posterior, best, extra)
            far = self._far_from_tried(np.array(candidates))
            for u, ok in zip(candidates, far):
                if not ok:
                    continue
                config = self.space.from_unit(u)
                key = self.space.key(config)
                if key not in self._seen:
                    self._seen.add(key)
                    return config
        return super().suggest()  # random draws: start-up, or every candidate too close to a tried one

    def _far_from_tried(self, unit: np.ndarray) -> np.ndarray:
        """Whether each candidate (unit-cube rows) lies at least ``min_distance`` (Euclidean, in the features)
        from every configuration tried or pending."""
        if self.min_distance == 0 or not self.configs:
            return np.ones(len(unit), dtype=bool)
        tried = np.stack([self._feature(trial_id) for trial_id in self.configs])
        radius = radius_after(self.min_distance, self.space, len(tried))
        features = self._features(unit)
        d2 = ((features ** 2).sum(1)[:, None] + (tried ** 2).sum(1)[None, :] - 2.0 * features @ tried.T)
        return d2.min(1) >= radius ** 2 - 1e-12

    # -- the model ---------------------------------------------------------------------------------------

    def _feature(self, trial_id: int) -> np.ndarray:
        if trial_id not in self._encoded:
            self._encoded[trial_id] = self.space.encode(self.configs[trial_id])
        return self._encoded[trial_id]

    def _training_data(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None] | None:
        """``(x, y, best, extra)``: features and targets (warped losses) the GP is fitted on, the target to
        improve on and the features appended to each candidate's (none here); ``None`` while the model is off."""
        resource = self.model_resource()
        if resource is None:
            return None
        losses = self.losses_at(resource)
        values = self._warp(np.array([loss for loss, _ in losses]))
        keep = self._cap(list(zip(values, (trial_id for _, trial_id in losses))), len(losses))
        ids = [trial_id for _, trial_id in keep] + self.pending
        y = np.array([value for value, _ in keep] + [float(values.max())] * len(self.pending))
        x = np.stack([self._feature(trial_id) for trial_id in ids])
        return x, y, float(values.min()), None

    def _warp(self, losses: np.ndarray) -> np.ndarray:
        """The model's targets for the losses of one resource (``inf`` or ``nan``: a failed or diverged job),
        in the same order; increasing in the loss, a failure the worst. ``quantile``: their normal scores
        (:func:`quantile_normal`); ``none``: the losses, a failure counting as the worst finite one."""
        losses = np.where(np.isnan(losses), np.inf, losses)
        if self.output_warping == "quantile":
            return quantile_normal(losses)
        finite = losses[np.isfinite(losses)]
        return np.where(np.isfinite(losses), losses, finite.max() if len(finite) else 1.0)

    def _cap(self, ranked: list, n_results: int) -> list:
        """At most ``max_points`` of ``ranked`` (best first): the best half and a random subset of the rest."""
        if len(ranked) <= self.max_points:
            return list(ranked)
        n_best = self.max_points // 2
        rng = np.random.default_rng([self.seed, n_results])
        others = rng.choice(len(ranked) - n_best, size=self.max_points - n_best, replace=False)
        return list(ranked[:n_best]) + [ranked[n_best + i] for i in sorted(others)]

    def _model(self) -> tuple[Posterior, float, np.ndarray | None] | None:
        data = self._training_data()
        if data is None:
            return None
        x, y, best, extra = data
        shift, scale = float(np.mean(y)), float(np.std(y)) or 1.0
        y = (y - shift) / scale
        n_results = sum(len(by_resource) for by_resource in self.results.values())
        if (self._params is None or len(self._params.inv_sq_lengthscales) != x.shape[1]
                or n_results >= (1 + self.refit_growth) * self._fitted_on):
            self._fitted_on = n_results
            self._params = fit_kernel(x, y, self._params)
        return Posterior(self._params, x, y), (best - shift) / scale, extra

    # -- the acquisition ---------------------------------------------------------------------------------

    def _ranked_candidates(self, posterior: Posterior, best: float, extra: np.ndarray | None) -> list[np.ndarray]:
        """Points of the unit cube, highest log expected improvement first: the local optima, then the
        Sobol' candidates."""
        candidates = self._sobol.random(self.n_candidates)
        features = self._with_extra(self._features(candidates), extra)
        scores = log_ei(*posterior.predict(features), best)
        order = np.argsort(-scores, kind="stable")
        local = self._local_search(posterior, best, candidates[order[:_LOCAL_STARTS]],
                                   features[order[:_LOCAL_STARTS]]) if self._float_columns else []
        return local + list(candidates[order])

    def _local_search(self, posterior: Posterior, best: float, starts: np.ndarray,
                      features: np.ndarray) -> list[np.ndarray]:
        """L-BFGS-B on log EI along the float coordinates from each start (one problem for all starts, as
        their objectives are independent); the results, best first."""
        params = [index for index, _ in self._float_columns]
        columns = [column for _, column in self._float_columns]
        shape = (len(starts), len(columns))

        def objective(flat: np.ndarray) -> tuple[float, np.ndarray]:
            z = features.copy()
            z[:, columns] = flat.reshape(shape)
            value, grad = log_ei_grad(posterior, z, best)
            return -float(value.sum()), -grad[:, columns].ravel()

        result = minimize(objective, starts[:, params].ravel(), jac=True, method="L-BFGS-B",
                          bounds=[(0.0, 1.0)] * (shape[0] * shape[1]), options={"maxiter": _LOCAL_ITERATIONS})
        moved = starts.copy()
        moved[:, params] = np.clip(result.x.reshape(shape), 0.0, 1.0)
        z = features.copy()
        z[:, columns] = moved[:, params]
        scores = log_ei(*posterior.predict(z), best)
        return list(moved[np.argsort(-scores, kind="stable")])

    @staticmethod
    def _with_extra(features: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
        if extra is None:
            return features
        return np.hstack([features, np.broadcast_to(extra, (len(features), len(extra)))])

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

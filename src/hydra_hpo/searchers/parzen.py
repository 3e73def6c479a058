"""A multivariate Parzen estimator over a search space's unit cube, as in Optuna's multivariate TPE.

One joint kernel per observation plus one prior kernel: a product of Gaussians truncated to [0, 1] for
numeric coordinates (floats and ints; log parameters are linear in log on the unit cube, ints are
floored by ``SearchSpace.from_unit``, so a kernel's mass on an integer's bin is its probability) and,
for each categorical, a probability table that puts most of the kernel's weight on the observed choice
(the Aitchison-Aitken idea, in Optuna's form: ``prior_weight / k`` on every choice, plus 1 on the
observed one).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp, ndtr, ndtri

# Optuna's multivariate bandwidth: 0.2 * n ** (-1 / (d + 4)) of the unit range, never below the
# "magic clip" 1 / min(100, n_kernels).
SIGMA0 = 0.2
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class ParzenEstimator:
    """The mixture of ``len(points) + 1`` kernels (observations and prior) on the unit cube.

    ``points`` is ``(n, d)``: unit-cube coordinates (``SearchSpace.to_unit``). ``n_choices[j]`` is the
    number of choices of coordinate ``j`` when it is a categorical, 0 when it is numeric.
    """

    def __init__(self, points: np.ndarray, n_choices: list[int], prior_weight: float = 1.0) -> None:
        points = np.asarray(points, dtype=float).reshape(-1, len(n_choices))
        n, d = points.shape
        self.n_choices = list(n_choices)
        self.numeric = [j for j, k in enumerate(n_choices) if k == 0]
        self.categorical = [j for j, k in enumerate(n_choices) if k > 0]
        weights = np.append(np.ones(n), prior_weight)
        self.log_weights = np.log(weights / weights.sum())

        sigma = SIGMA0 * max(n, 1) ** (-1.0 / (d + 4))
        sigma = max(sigma, 1.0 / min(100, n + 1))
        numeric = points[:, self.numeric]
        self.mu = np.vstack([numeric, np.full((1, len(self.numeric)), 0.5)])
        self.sigma = np.vstack([np.full_like(numeric, sigma), np.ones((1, len(self.numeric)))])
        mass = ndtr((1.0 - self.mu) / self.sigma) - ndtr((0.0 - self.mu) / self.sigma)
        self._log_norm = np.log(self.sigma) + _LOG_SQRT_2PI + np.log(mass)

        self.tables: list[np.ndarray] = []  # per categorical: (n + 1, k) choice probabilities per kernel
        for j in self.categorical:
            k = n_choices[j]
            table = np.full((n + 1, k), prior_weight / k)
            observed = np.minimum((points[:, j] * k).astype(int), k - 1)
            table[np.arange(n), observed] += 1.0
            table[n] = 1.0 / k
            self.tables.append(np.log(table / table.sum(axis=1, keepdims=True)))

    def sample(self, rng: np.random.Generator, size: int, bandwidth_factor: float = 1.0) -> np.ndarray:
        """``size`` points of the unit cube drawn from the mixture, its numeric kernels widened by
        ``bandwidth_factor`` (BOHB samples candidates with 3 times the bandwidth it ranks them with)."""
        component = rng.choice(len(self.log_weights), size=size, p=np.exp(self.log_weights))
        out = np.empty((size, len(self.n_choices)))
        if self.numeric:
            mu, sigma = self.mu[component], self.sigma[component] * bandwidth_factor
            # inverse-CDF sampling of the truncated Gaussians
            low, high = ndtr((0.0 - mu) / sigma), ndtr((1.0 - mu) / sigma)
            u = low + rng.random((size, len(self.numeric))) * (high - low)
            x = mu + sigma * ndtri(np.clip(u, 1e-300, 1.0 - 1e-16))
            out[:, self.numeric] = np.clip(x, 0.0, 1.0)
        for j, table in zip(self.categorical, self.tables):
            cumulative = np.cumsum(np.exp(table[component]), axis=1)
            draw = rng.random((size, 1)) * cumulative[:, -1:]
            index = np.minimum((cumulative < draw).sum(axis=1), self.n_choices[j] - 1)
            out[:, j] = (index + 0.5) / self.n_choices[j]
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density of the mixture at each row of ``x`` (``(m, d)`` unit-cube points)."""
        x = np.asarray(x, dtype=float).reshape(-1, len(self.n_choices))
        per_kernel = np.tile(self.log_weights, (len(x), 1))  # (m, n + 1)
        if self.numeric:
            z = (x[:, None, self.numeric] - self.mu[None]) / self.sigma[None]  # (m, n + 1, numeric)
            per_kernel += (-0.5 * z * z - self._log_norm[None]).sum(axis=2)
        for j, table in zip(self.categorical, self.tables):
            index = np.minimum((x[:, j] * self.n_choices[j]).astype(int), self.n_choices[j] - 1)
            per_kernel += table[:, index].T
        return logsumexp(per_kernel, axis=1)

"""A small exact Gaussian process in numpy/scipy, after Optuna's ``_gp`` (gp.py, prior.py, acqf.py):
Matern-5/2 kernel with one inverse squared length scale per feature, hyperparameters fitted by maximizing
the marginal likelihood plus Optuna's default log prior (L-BFGS-B with analytic gradients, warm-started),
and a numerically stable log expected improvement with its gradient in the inputs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import erfcx, log_ndtr, ndtri
from scipy.stats import rankdata

MIN_NOISE = 1e-6  # Optuna's DEFAULT_MINIMUM_NOISE_VAR
# bounds of the raw (log) parameters: wide enough for any standardized data, narrow enough that a long
# L-BFGS-B step cannot overflow or underflow them
_RAW_BOUNDS = {"lengthscale": (-12.0, 12.0), "scale": (-8.0, 8.0), "noise": (-25.0, 3.0)}
_SQRT5 = math.sqrt(5.0)
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class KernelParams:
    """Inverse squared length scales (one per feature), amplitude and noise variance."""

    inv_sq_lengthscales: np.ndarray
    scale: float
    noise: float

    @classmethod
    def initial(cls, dim: int) -> KernelParams:
        return cls(np.ones(dim), 1.0, 0.01)

    def to_raw(self) -> np.ndarray:
        return np.concatenate([np.log(self.inv_sq_lengthscales), [math.log(self.scale),
                                                                 math.log(max(self.noise - MIN_NOISE, 1e-12))]])

    @classmethod
    def from_raw(cls, raw: np.ndarray) -> KernelParams:
        return cls(np.exp(raw[:-2]), float(np.exp(raw[-2])), float(np.exp(raw[-1]) + MIN_NOISE))


def quantile_normal(values: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks of ``values``: ``Phi^-1((rank - 1/2) / n)``, ties sharing their average rank
    (``inf``, a failed job, ranks last). A Gaussian copula on the outputs (Salinas et al. 2020): whatever the
    losses' scale, a plateau of diverged runs or a heavy tail, the GP sees standard normal targets whose
    spread is where the ranks differ."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values
    return ndtri((rankdata(values, method="average") - 0.5) / len(values))


def _sq_dist(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted squared distances ``sum_j w_j (a_ij - b_kj)^2``."""
    aw, bw = a * w, b * w
    d2 = (aw * a).sum(1)[:, None] + (bw * b).sum(1)[None, :] - 2.0 * aw @ b.T
    return np.maximum(d2, 0.0)


def _matern(d2: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Matern-5/2 of squared distances and its derivative in ``d2`` (finite at 0)."""
    r = np.sqrt(d2)
    e = np.exp(-_SQRT5 * r)
    k = scale * (1.0 + _SQRT5 * r + 5.0 / 3.0 * d2) * e
    dk_dd2 = -5.0 / 6.0 * scale * (1.0 + _SQRT5 * r) * e
    return k, dk_dd2


def _log_prior(p: KernelParams) -> tuple[float, np.ndarray]:
    """Optuna's default_log_prior and its gradient in the raw (log) parameters."""
    w = p.inv_sq_lengthscales
    value = -(0.1 / w + 0.1 * w).sum() + (math.log(p.scale) - p.scale) + (0.1 * math.log(p.noise) - 30.0 * p.noise)
    grad = np.concatenate([0.1 / w - 0.1 * w, [1.0 - p.scale,
                                              (0.1 / p.noise - 30.0) * (p.noise - MIN_NOISE)]])
    return float(value), grad


def _neg_objective(raw: np.ndarray, x: np.ndarray, y: np.ndarray, diffs: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative (log marginal likelihood + log prior) and its gradient in the raw parameters."""
    p = KernelParams.from_raw(raw)
    n = len(y)
    d2 = _sq_dist(x, x, p.inv_sq_lengthscales)
    k, dk = _matern(d2, p.scale)
    k[np.diag_indices(n)] += p.noise
    try:
        chol = cho_factor(k, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 1e10, np.zeros_like(raw)
    alpha = cho_solve(chol, y, check_finite=False)
    log_det = 2.0 * np.log(np.diag(chol[0])).sum()
    lml = -0.5 * y @ alpha - 0.5 * log_det - n * _HALF_LOG_2PI
    inv = cho_solve(chol, np.eye(n), check_finite=False)
    inner = np.outer(alpha, alpha) - inv  # d lml / dK = 0.5 * inner
    weighted = 0.5 * inner * dk
    grad_w = np.einsum("ij,ijd->d", weighted, diffs) * p.inv_sq_lengthscales
    grad_scale = 0.5 * np.sum(inner * (k - p.noise * np.eye(n)))
    grad_noise = 0.5 * np.trace(inner) * (p.noise - MIN_NOISE)
    prior, prior_grad = _log_prior(p)
    grad = np.concatenate([grad_w, [grad_scale, grad_noise]]) + prior_grad
    if not (math.isfinite(lml + prior) and np.all(np.isfinite(grad))):
        return 1e10, np.zeros_like(raw)
    return -(lml + prior), -grad


def fit_kernel(x: np.ndarray, y: np.ndarray, start: KernelParams | None = None) -> KernelParams:
    """Maximum a posteriori kernel hyperparameters for standardized ``y`` at ``x`` (L-BFGS-B from ``start``,
    the previous fit, or Optuna's initial values)."""
    start = start if start is not None and len(start.inv_sq_lengthscales) == x.shape[1] else KernelParams.initial(
        x.shape[1])
    diffs = (x[:, None, :] - x[None, :, :]) ** 2
    bounds = [_RAW_BOUNDS["lengthscale"]] * x.shape[1] + [_RAW_BOUNDS["scale"], _RAW_BOUNDS["noise"]]
    raw = np.clip(start.to_raw(), [low for low, _ in bounds], [high for _, high in bounds])
    result = minimize(_neg_objective, raw, args=(x, y, diffs), jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"gtol": 1e-2, "maxiter": 200})
    return KernelParams.from_raw(result.x)


class Posterior:
    """The GP posterior of ``y`` at ``x`` under ``params``; noise-free predictions with input gradients."""

    def __init__(self, params: KernelParams, x: np.ndarray, y: np.ndarray) -> None:
        self.params, self.x = params, x
        d2 = _sq_dist(x, x, params.inv_sq_lengthscales)
        k = _matern(d2, params.scale)[0]
        k[np.diag_indices(len(x))] += params.noise
        try:
            self.chol = cho_factor(k, lower=True, check_finite=False)
        except np.linalg.LinAlgError:  # nearly equal rows under a tiny noise: add jitter
            k[np.diag_indices(len(x))] += 1e-6 * params.scale
            self.chol = cho_factor(k, lower=True, check_finite=False)
        self.alpha = cho_solve(self.chol, y, check_finite=False)

    def predict(self, z: np.ndarray, grad: bool = False):
        """Mean and standard deviation at rows ``z``; with ``grad``, also their gradients (rows x features)."""
        w = self.params.inv_sq_lengthscales
        k, dk = _matern(_sq_dist(z, self.x, w), self.params.scale)
        mean = k @ self.alpha
        v = solve_triangular(self.chol[0], k.T, lower=True, check_finite=False)
        var = np.maximum(self.params.scale - np.einsum("ij,ij->j", v, v), 1e-12)
        std = np.sqrt(var)
        if not grad:
            return mean, std
        # d k(z, x_i) / d z = dk * 2 w (z - x_i)
        b = solve_triangular(self.chol[0], v, lower=True, trans=1, check_finite=False).T  # K* K^-1
        ga, gb = dk * self.alpha[None, :], dk * b
        dmean = 2.0 * w * (ga.sum(1)[:, None] * z - ga @ self.x)
        dvar = -2.0 * 2.0 * w * (gb.sum(1)[:, None] * z - gb @ self.x)
        return mean, std, dmean, dvar / (2.0 * std[:, None])


def log_h(z: np.ndarray) -> np.ndarray:
    """``log(z * Phi(z) + phi(z))``, stable for very negative ``z`` (via erfcx, as BoTorch's LogEI)."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    big = z > -1.0
    zb = z[big]
    out[big] = np.log(zb * np.exp(log_ndtr(zb)) + np.exp(-0.5 * zb * zb - _HALF_LOG_2PI))
    zs = z[~big]
    # h(z) = phi(z) * (1 - |z| * erfcx(|z| / sqrt 2) * sqrt(pi / 2)) for z < 0
    tail = -np.expm1(np.log(-zs) + np.log(erfcx(-zs / math.sqrt(2))) + 0.5 * math.log(math.pi / 2))
    out[~big] = -0.5 * zs * zs - _HALF_LOG_2PI + np.log(np.maximum(tail, 1e-300))
    return out


def log_ei(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Log expected improvement below ``best`` (minimization)."""
    return np.log(std) + log_h((best - mean) / std)


def log_ei_grad(posterior: Posterior, z: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray]:
    """Log EI at rows ``z`` and its gradient in ``z``."""
    mean, std, dmean, dstd = posterior.predict(z, grad=True)
    u = (best - mean) / std
    lh = log_h(u)
    ratio = np.exp(log_ndtr(u) - lh)  # d log h / du = Phi(u) / h(u)
    d_mean = -ratio / std
    d_std = 1.0 / std - ratio * u / std
    return np.log(std) + lh, d_mean[:, None] * dmean + d_std[:, None] * dstd

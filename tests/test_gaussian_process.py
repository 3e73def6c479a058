"""The numpy GP behind hpo.searcher=gp and mobster: gradients match finite differences, log EI is stable
where EI underflows, and the fitted model predicts a smooth function it saw."""

from __future__ import annotations

import numpy as np
from scipy.optimize import check_grad
from scipy.stats import norm

from hydra_hpo.searchers.gaussian_process import (KernelParams, Posterior, _neg_objective, fit_kernel, log_ei_grad,
                                                  log_h, quantile_normal)


def data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    y = np.sin(6 * x[:, 0]) + 0.5 * x[:, 1]  # the third feature does not matter
    return x, (y - y.mean()) / y.std()


def test_marginal_likelihood_gradient_matches_finite_differences() -> None:
    x, y = data()
    diffs = (x[:, None, :] - x[None, :, :]) ** 2
    raw = KernelParams(np.array([2.0, 0.5, 1.0]), 1.3, 0.05).to_raw()
    error = check_grad(lambda r: _neg_objective(r, x, y, diffs)[0], lambda r: _neg_objective(r, x, y, diffs)[1], raw)
    assert error < 1e-4 * np.linalg.norm(_neg_objective(raw, x, y, diffs)[1])


def test_log_ei_gradient_matches_finite_differences() -> None:
    x, y = data()
    posterior = Posterior(fit_kernel(x, y), x, y)
    for point in np.random.default_rng(1).random((5, 3)):
        value = lambda z: log_ei_grad(posterior, z[None, :], float(y.min()))[0][0]  # noqa: E731
        grad = lambda z: log_ei_grad(posterior, z[None, :], float(y.min()))[1][0]  # noqa: E731
        assert check_grad(value, grad, point) < 1e-3 * max(1.0, np.linalg.norm(grad(point)))


def test_log_h_is_exact_where_direct_formula_works_and_finite_far_below() -> None:
    z = np.array([-8.0, -3.0, -1.0001, -0.9999, 0.0, 2.5])
    assert np.allclose(log_h(z), np.log(z * norm.cdf(z) + norm.pdf(z)), rtol=1e-8)
    far = log_h(np.array([-40.0, -400.0]))
    assert np.all(np.isfinite(far)) and far[1] < far[0] < -800  # EI itself underflows to 0 here


def test_fitted_gp_predicts_held_out_points_and_ignores_the_irrelevant_feature() -> None:
    x, y = data(60)
    params = fit_kernel(x, y)
    test_x, test_y = data(200, seed=5)
    mean, std = Posterior(params, x, y).predict(test_x)
    assert np.mean((mean - test_y) ** 2) < 0.05 * np.var(test_y)
    assert params.inv_sq_lengthscales[2] < 0.1 * params.inv_sq_lengthscales[0]
    # warm start from the fit converges to (about) the same optimum
    again = fit_kernel(x, y, params)
    assert np.allclose(again.to_raw(), params.to_raw(), atol=0.2)


def test_quantile_normal_keeps_the_order_shares_ties_and_puts_failures_last() -> None:
    losses = np.array([0.9, 0.011, np.inf, 0.9, 0.05])
    scores = quantile_normal(losses)
    # ranks 3.5, 1, 5, 3.5, 2 of 5 -> Phi^-1((rank - 1/2) / 5)
    assert np.allclose(scores, norm.ppf((np.array([3.5, 1, 5, 3.5, 2]) - 0.5) / 5))
    assert scores[2] == scores.max() and scores[0] == scores[3]
    # scale-free: any increasing map of the losses gives the same targets
    assert np.allclose(quantile_normal(np.log(losses)), scores)

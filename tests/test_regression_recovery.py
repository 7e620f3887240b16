"""Bayes by Backprop on Bayesian linear regression recovers the analytic answer.

With a Gaussian likelihood of known noise and a N(0, s0^2) prior on the
weights, the exact posterior is N(m, S) with precision L = X^T X / s^2 + I / s0^2
and m = S X^T y / s^2. The best mean-field Gaussian has mean m and variances
1 / L_ii (Bishop, PRML sec. 10.1.2). The fitted posterior must land there.
"""

import torch

from fblitz import layers, likelihoods, optim, priors
from fblitz.training import fit
from fblitz.variational.distributions import sigma
from tests.helpers import randn

NOISE, PRIOR_SIGMA, N, D = 0.5, 1.0, 40, 3


def test_mean_field_fit_recovers_the_analytic_posterior():
    x = randn(0, N, D, dtype=torch.float64)
    true_w = torch.tensor([[1.0, -0.5, 0.25]], dtype=torch.float64)
    y = x @ true_w.T + NOISE * randn(1, N, 1, dtype=torch.float64)

    precision = x.T @ x / NOISE**2 + torch.eye(D, dtype=torch.float64) / PRIOR_SIGMA**2
    exact_mean = torch.linalg.solve(precision, x.T @ y / NOISE**2).squeeze(1)
    mean_field_std = precision.diagonal().rsqrt()

    model = layers.linear(D, 1, bias=False, bayes=layers.Bayes(prior=priors.gaussian(PRIOR_SIGMA), rho_init=-3.0))
    params = model.init(0, dtype=torch.float64)
    # full batch, per-datum convention: loss = -ELBO / N exactly in expectation
    result = fit(
        model,
        params,
        x,
        y,
        likelihood=likelihoods.gaussian(NOISE),
        optimizer=optim.adam(0.02),
        key=1,
        epochs=1500,
        batch_size=N,
        n_samples=32,
        progress=False,
    )
    result = fit(
        model,
        result.params,
        x,
        y,
        likelihood=likelihoods.gaussian(NOISE),
        optimizer=optim.adam(0.002),
        key=2,
        epochs=1500,
        batch_size=N,
        n_samples=32,
        progress=False,
    )
    fitted_mean = result.params["weight"]["mu"].squeeze(0)
    fitted_std = sigma(result.params["weight"]["rho"]).squeeze(0)

    # Tolerances: 0.1 posterior standard deviations for the means, 10% for the stds
    # (the gradient noise of 32 samples leaves the optimum jittering below that).
    assert torch.all((fitted_mean - exact_mean).abs() < 0.1 * mean_field_std), (fitted_mean, exact_mean)
    assert torch.all((fitted_std / mean_field_std - 1).abs() < 0.1), (fitted_std, mean_field_std)

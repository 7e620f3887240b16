"""Numerical range: finite log-probs, KL and gradients over the documented ranges.

rho in [-50, 50], prior sigma from 1e-8 to 1e3, |w| up to 100, float32 and
float64, checked against mpmath references.
"""

import math

import mpmath
import pytest
import torch

from fblitz import priors
from fblitz.variational.distributions import gaussian_kl, posterior_log_prob

mpmath.mp.dps = 50
RHOS = [-50.0, -20.0, -5.0, 0.0, 5.0, 50.0]
SIGMAS = [1e-8, 1e-3, 1.0, 1e3]


def kl_reference(mu, rho, sigma_p):
    s = mpmath.log1p(mpmath.exp(mpmath.mpf(rho)))
    spread = (s**2 + mpmath.mpf(mu) ** 2) / (2 * mpmath.mpf(sigma_p) ** 2)
    return float(spread - mpmath.log(s) + mpmath.log(sigma_p) - 0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sigma_p", SIGMAS)
def test_closed_form_kl_is_finite_and_accurate(dtype, sigma_p):
    mu = torch.tensor([0.0, 1.0, -100.0], dtype=dtype)
    for rho in RHOS:
        r = torch.full((3,), rho, dtype=dtype, requires_grad=True)
        m = mu.clone().requires_grad_(True)
        value = gaussian_kl(m, r, 0.0, sigma_p)
        grads = torch.autograd.grad(value.sum(), (m, r))
        reference = [kl_reference(float(x), rho, sigma_p) for x in mu]
        if all(abs(v) < torch.finfo(dtype).max / 10 for v in reference):
            assert torch.isfinite(value).all() and all(torch.isfinite(g).all() for g in grads)
            rtol = 1e-10 if dtype == torch.float64 else 1e-4
            for got, want in zip(value.tolist(), reference):
                assert math.isclose(got, want, rel_tol=rtol, abs_tol=rtol * 10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("sigma", SIGMAS)
def test_prior_log_prob_and_gradient_finite_for_w_up_to_100(dtype, sigma):
    w = torch.linspace(-100, 100, 401, dtype=dtype, requires_grad=True)
    for prior in (priors.gaussian(sigma), priors.scale_mixture(0.5, 1.0, sigma), priors.scale_mixture(0.1, sigma, 1e3)):
        try:
            value = prior.log_prob(w)
        except Exception as error:  # overflow is reported, never returned
            assert "not finite" in str(error) and sigma <= 1e-3 and isinstance(prior, priors.GaussianPrior)
            continue
        (grad,) = torch.autograd.grad(value.sum(), w)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()
        if dtype == torch.float64 and isinstance(prior, priors.GaussianPrior):
            x = 37.5
            want = float(-((mpmath.mpf(x) / sigma) ** 2) / 2 - mpmath.log(sigma) - mpmath.log(2 * mpmath.pi) / 2)
            assert math.isclose(float(prior.log_prob(torch.tensor(x, dtype=dtype))), want, rel_tol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_posterior_log_prob_finite_over_rho_range(dtype):
    rho = torch.tensor(RHOS, dtype=dtype, requires_grad=True)
    eps = torch.full_like(rho, 3.0)
    value = posterior_log_prob(eps, rho)
    (grad,) = torch.autograd.grad(value.sum(), rho)
    assert torch.isfinite(value).all() and torch.isfinite(grad).all()
    for got, r in zip(value.tolist(), RHOS):
        want = float(-4.5 - mpmath.log(mpmath.log1p(mpmath.exp(r))) - mpmath.log(2 * mpmath.pi) / 2)
        assert math.isclose(got, want, rel_tol=1e-12 if dtype == torch.float64 else 1e-5)

import math

import mpmath
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fblitz.errors import FblitzValueError
from fblitz.variational.distributions import (
    gaussian_kl,
    gaussian_log_prob,
    inverse_softplus,
    log_sigma,
    posterior_log_prob,
    reparameterize,
    sigma,
)

finite_rho = st.floats(min_value=-50, max_value=50, allow_nan=False)


@given(st.floats(min_value=1e-8, max_value=1e3))
def test_inverse_softplus_round_trip(value):
    s = torch.tensor(value, dtype=torch.float64)
    assert torch.allclose(sigma(inverse_softplus(s)), s, rtol=1e-12, atol=0)


def test_inverse_softplus_rejects_non_positive():
    with pytest.raises(FblitzValueError, match="sigma must be > 0"):
        inverse_softplus(0.0)
    with pytest.raises(FblitzValueError, match="sigma must be > 0"):
        inverse_softplus(torch.tensor([1.0, -1.0]))


@given(finite_rho)
def test_log_sigma_matches_high_precision(rho):
    reference = float(mpmath.log(mpmath.log1p(mpmath.exp(rho))))
    for dtype, rtol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        value = float(log_sigma(torch.tensor(rho, dtype=dtype)))
        assert math.isclose(value, reference, rel_tol=rtol, abs_tol=rtol)


@given(finite_rho)
def test_sigma_and_its_log_have_finite_gradients(rho):
    for dtype in (torch.float32, torch.float64):
        r = torch.tensor(rho, dtype=dtype, requires_grad=True)
        (grad_sigma,) = torch.autograd.grad(sigma(r), r)
        (grad_log,) = torch.autograd.grad(log_sigma(r), r)
        assert torch.isfinite(grad_sigma) and torch.isfinite(grad_log)


def test_posterior_log_prob_equals_gaussian_density_at_sample():
    mu = torch.linspace(-1, 1, 7, dtype=torch.float64)
    rho = torch.linspace(-5, 2, 7, dtype=torch.float64)
    eps = torch.linspace(-2, 2, 7, dtype=torch.float64)
    w = reparameterize(mu, rho, eps)
    assert torch.allclose(posterior_log_prob(eps, rho), gaussian_log_prob(w, mu, sigma(rho)), rtol=1e-12)


def test_posterior_log_prob_has_the_same_total_gradient():
    # Written through eps, log q(w) has the same derivative w.r.t. (mu, rho) as
    # the density evaluated at w = mu + sigma * eps.
    mu = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    rho = torch.tensor([-1.0, 0.5], dtype=torch.float64, requires_grad=True)
    eps = torch.tensor([0.7, -1.3], dtype=torch.float64)
    via_eps = torch.autograd.grad(
        posterior_log_prob(eps, rho).sum(), (mu, rho), allow_unused=True, materialize_grads=True
    )
    w = reparameterize(mu, rho, eps)
    via_w = torch.autograd.grad(gaussian_log_prob(w, mu, sigma(rho)).sum(), (mu, rho))
    for a, b in zip(via_eps, via_w):
        assert torch.allclose(a, b, atol=1e-12)


@given(st.floats(-3, 3), st.floats(-50, 3), st.floats(-2, 2), st.floats(1e-4, 1e3))
def test_gaussian_kl_matches_high_precision(mu_q, rho_q, mu_p, sigma_p):
    mpmath.mp.dps = 50
    s_q = mpmath.log1p(mpmath.exp(rho_q))
    reference = (
        mpmath.log(sigma_p / s_q)
        + (s_q**2 + (mpmath.mpf(mu_q) - mu_p) ** 2) / (2 * mpmath.mpf(sigma_p) ** 2)
        - mpmath.mpf(1) / 2
    )
    value = gaussian_kl(
        torch.tensor(mu_q, dtype=torch.float64), torch.tensor(rho_q, dtype=torch.float64), mu_p, sigma_p
    )
    assert math.isclose(float(value), float(reference), rel_tol=1e-10, abs_tol=1e-10)

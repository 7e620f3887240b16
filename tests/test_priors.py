import math

import mpmath
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fblitz import priors
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.random import normal
from fblitz.variational.distributions import reparameterize, sigma

mpmath.mp.dps = 50


def mixture_log_prob_reference(w: float, pi: float, s1: float, s2: float) -> float:
    w = mpmath.mpf(w)

    def density(s):
        s = mpmath.mpf(s)
        return mpmath.exp(-((w / s) ** 2) / 2) / (s * mpmath.sqrt(2 * mpmath.pi))

    return float(mpmath.log(pi * density(s1) + (1 - pi) * density(s2)))


@given(
    st.floats(min_value=-100, max_value=100),
    st.floats(min_value=0.01, max_value=0.99),
    st.floats(min_value=1e-3, max_value=10),
    st.floats(min_value=1e-8, max_value=1e3),
)
def test_scale_mixture_log_prob_matches_high_precision(w, pi, s1, s2):
    prior = priors.scale_mixture(pi, s1, s2)
    reference = mixture_log_prob_reference(w, pi, s1, s2)
    value = float(prior.log_prob(torch.tensor(w, dtype=torch.float64)))
    assert math.isclose(value, reference, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scale_mixture_finite_value_and_gradient_for_large_weights(dtype):
    w = torch.linspace(-100, 100, 2001, dtype=dtype, requires_grad=True)
    for prior in (
        priors.scale_mixture(0.5, 1.0, 1e-8),
        priors.scale_mixture(0.25, 1e3, 0.0025),
        priors.blitz_default(0.1, 0.4, 0.5),
    ):
        value = prior.log_prob(w)
        (grad,) = torch.autograd.grad(value.sum(), w)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()


def test_blitz_default_is_a_gaussian_with_closed_form():
    prior = priors.blitz_default()
    assert prior.has_closed_form_kl
    w = torch.linspace(-1, 1, 5, dtype=torch.float64)
    expected = torch.distributions.Normal(0.0, 0.1).log_prob(w)
    assert torch.allclose(prior.log_prob(w), expected)
    assert not priors.blitz_default(prior_pi=0.5).has_closed_form_kl
    assert priors.scale_mixture(0.0, 1.0, 0.3).log_prob(torch.zeros(1)).item() == pytest.approx(
        torch.distributions.Normal(0.0, 0.3).log_prob(torch.zeros(1)).item()
    )


@given(st.floats(-1, 1), st.floats(-4, 1), st.floats(0.05, 3), st.floats(-0.5, 0.5))
def test_closed_form_kl_matches_monte_carlo(mu, rho, prior_sigma, prior_mean):
    # 200k draws: the standard error of the MC mean is below 1% of the spread
    # of log q - log p; the tolerance is 5 standard errors.
    prior = priors.gaussian(prior_sigma, prior_mean)
    mu_t = torch.full((200_000,), mu, dtype=torch.float64)
    rho_t = torch.full_like(mu_t, rho)
    eps = normal(123, mu_t.shape, dtype=torch.float64)
    w = reparameterize(mu_t, rho_t, eps)
    log_q = torch.distributions.Normal(mu_t, sigma(rho_t)).log_prob(w)
    samples = log_q - prior.log_prob(w)
    standard_error = float(samples.std()) / math.sqrt(samples.numel())
    closed = float(prior.kl(mu_t[:1], rho_t[:1]))
    assert abs(float(samples.mean()) - closed) < 5 * standard_error + 1e-9


def test_log_prob_prior_checks_shape_and_offers_optional_kl():
    laplace = priors.log_prob(lambda w: -w.abs() - math.log(2.0))
    w = torch.tensor([0.0, 1.0])
    assert torch.allclose(laplace.log_prob(w), torch.distributions.Laplace(0.0, 1.0).log_prob(w))
    assert not laplace.has_closed_form_kl
    with pytest.raises(FblitzValueError, match="no closed-form KL"):
        laplace.kl(w, w)
    scalar = priors.log_prob(lambda w: w.sum())
    with pytest.raises(FblitzValueError, match="elementwise log-density of shape"):
        scalar.log_prob(w)
    with pytest.raises(FblitzTypeError):
        priors.log_prob("not callable")


@pytest.mark.parametrize(
    "make",
    [
        lambda: priors.gaussian(0.0),
        lambda: priors.gaussian(float("nan")),
        lambda: priors.scale_mixture(1.5, 1.0, 0.1),
        lambda: priors.scale_mixture(0.5, -1.0, 0.1),
        lambda: priors.scale_mixture(0.5, 1.0, float("inf")),
    ],
)
def test_invalid_prior_arguments_raise(make):
    with pytest.raises(FblitzValueError):
        make()


def test_check_prior_rejects_non_priors():
    with pytest.raises(FblitzTypeError, match="prior must be a prior"):
        priors.check_prior("prior", 0.1)

"""The Student-t likelihood, its mixture predictive and the learned degrees of freedom.

Densities are compared with ``torch.distributions.StudentT`` in float64 (to
1e-10), gradients by gradcheck, and a fit to t-distributed data must reach the
maximum-likelihood estimate of the same data, computed independently with
``torch.distributions.StudentT`` and L-BFGS. Comparing with the MLE rather
than with the generating values removes the sampling error (the MLE of df from
2000 draws has a standard error of about 0.3), so the tolerances are those of
the optimisation: over 20 data seeds the fit was within 0.022 of the MLE's df,
0.4% of its scale and 0.01 of its weight and bias.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from fblitz import layers, likelihoods, metrics, optim, priors
from fblitz.distributions import student_t_log_prob
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.train import fit
from tests.helpers import randn

f64 = torch.float64
reals = st.floats(-50.0, 50.0)
scales = st.floats(1e-3, 30.0)
dofs = st.floats(0.2, 500.0)


def torch_t(loc, scale, df):
    return torch.distributions.StudentT(torch.as_tensor(df, dtype=f64), loc, torch.as_tensor(scale, dtype=f64))


@given(x=reals, loc=reals, scale=scales, df=dofs)
def test_log_prob_matches_torch_student_t(x, loc, scale, df):
    x_t = torch.tensor([x], dtype=f64)
    expected = torch_t(torch.tensor([loc], dtype=f64), scale, df).log_prob(x_t)
    tensor_args = student_t_log_prob(x_t, loc, torch.tensor([scale], dtype=f64), torch.tensor([df], dtype=f64))
    assert torch.allclose(student_t_log_prob(x_t, loc, scale, df), expected, rtol=1e-10, atol=1e-10)
    assert torch.allclose(tensor_args, expected, rtol=1e-10, atol=1e-10)


def test_log_prob_far_in_the_tail_and_near_the_gaussian_limit():
    x = torch.tensor([1e30, 1e-8, 3.0], dtype=f64)
    assert torch.isfinite(student_t_log_prob(x, 0.0, 1.0, 2.0)).all()
    big_df = student_t_log_prob(x[1:], 0.0, 1.0, 1e8)
    assert torch.allclose(big_df, torch.distributions.Normal(0.0, 1.0).log_prob(x[1:]), atol=1e-7)


@pytest.mark.parametrize("df", [3.0, None])
def test_likelihood_is_the_mean_negative_log_density(df):
    loc, raw_scale, raw_df = randn(0, 6, 2, dtype=f64), randn(1, 6, 2, dtype=f64), randn(2, 6, 2, dtype=f64)
    targets = randn(3, 6, 2, dtype=f64)
    pieces = [loc, raw_scale] + ([raw_df] if df is None else [])
    nu = torch.tensor(3.0, dtype=f64) if df is not None else F.softplus(raw_df) + 1.0
    expected = -torch_t(loc, F.softplus(raw_scale) + 1e-6, nu).log_prob(targets).sum(dim=1).mean()
    value = likelihoods.student_t(df)(torch.cat(pieces, dim=-1), targets)
    assert torch.allclose(value, expected, rtol=1e-12)


@pytest.mark.parametrize("df", [2.5, None])
def test_likelihood_gradcheck(df):
    parts = 2 if df is not None else 3
    outputs = randn(4, 5, parts, dtype=f64).requires_grad_()
    targets = (3.0 * randn(5, 5, 1, dtype=f64)).requires_grad_()
    assert torch.autograd.gradcheck(likelihoods.student_t(df, min_sigma=0.0), (outputs, targets))


def test_bad_arguments_are_named():
    with pytest.raises(FblitzValueError, match="df must be > 0"):
        likelihoods.student_t(df=0.0)
    with pytest.raises(FblitzTypeError, match="min_df must be a real number"):
        likelihoods.student_t(min_df="1")
    with pytest.raises(FblitzValueError, match=r"\(\.\.\., 3 \* D\) with locations, raw scales, raw degrees"):
        likelihoods.student_t()(torch.zeros(4, 2), torch.zeros(4, 1))
    with pytest.raises(FblitzValueError, match=r"\(\.\.\., 2 \* D\)"):
        likelihoods.student_t(df=4.0)(torch.zeros(4, 3), torch.zeros(4, 1))
    with pytest.raises(FblitzValueError, match="init_df must be > min_df"):
        layers.learned_df(1, init_df=1.0)
    with pytest.raises(FblitzValueError, match="scale must be > 0"):
        student_t_log_prob(torch.zeros(2), 0.0, torch.tensor([1.0, -1.0]), 3.0)
    with pytest.raises(FblitzValueError, match="dfs must be > 0"):
        metrics.student_t_mixture_log_likelihood(torch.zeros(2, 1), torch.ones(2, 1), torch.zeros(2, 1), torch.zeros(1))


def test_learned_df_layer_starts_at_init_df():
    layer = layers.learned_df(2, init_df=7.0, min_df=1.5)
    out = layer.apply(layer.init(0, dtype=f64), torch.zeros(3, 4, dtype=f64))
    assert torch.allclose(F.softplus(out[:, 4:]) + 1.5, torch.full((3, 2), 7.0, dtype=f64))


def student_t_mle(x, y):
    """(weight, bias, scale, df) maximising the torch StudentT likelihood of y = w x + b + t noise."""
    theta = torch.tensor([2.0, -1.0, -1.0, 1.0], dtype=f64, requires_grad=True)  # w, b, log scale, log df
    search = torch.optim.LBFGS(
        [theta], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14, line_search_fn="strong_wolfe"
    )

    def negative_log_likelihood():
        search.zero_grad()
        loss = -torch_t(theta[0] * x + theta[1], theta[2].exp(), theta[3].exp()).log_prob(y).mean()
        loss.backward()
        return loss

    search.step(negative_log_likelihood)
    w, b, log_scale, log_df = theta.detach().tolist()
    return w, b, math.exp(log_scale), math.exp(log_df)


def test_fit_reaches_the_maximum_likelihood_scale_and_tails_of_t_distributed_noise():
    n, true_scale, true_df = 2000, 0.3, 3.0
    x = randn(0, n, 1, dtype=f64)
    noise = metrics.student_t_mixture_samples(
        2,
        torch.zeros(1, 1, dtype=f64),
        torch.full((1, 1), true_scale, dtype=f64),
        torch.full((1, 1), true_df, dtype=f64),
        n,
    )
    y = 2.0 * x - 1.0 + noise
    model = layers.serial(
        layers.linear(1, 1, prior=priors.gaussian(10.0), posterior_rho_init=-6.0),
        layers.learned_noise(1, init_sigma=1.0),
        layers.learned_df(1, init_df=10.0),
    )
    params = fit(
        model, model.init(0, dtype=f64), x, y, likelihood=likelihoods.student_t(), optimizer=optim.adam(0.1),
        key=1, epochs=200, batch_size=n, n_samples=1, progress=False,
    ).params  # fmt: skip
    scale = float(F.softplus(params["1"]["noise_rho"]))
    df = float(F.softplus(params["2"]["df_rho"]) + 1.0)
    w, b = float(params["0"]["weight"]["mu"]), float(params["0"]["bias"]["mu"])
    mle_w, mle_b, mle_scale, mle_df = student_t_mle(x, y)
    assert abs(df - mle_df) < 0.1, (df, mle_df)
    assert abs(scale / mle_scale - 1) < 0.015, (scale, mle_scale)
    assert abs(w - mle_w) < 0.03 and abs(b - mle_b) < 0.03, (w, b, mle_w, mle_b)
    # and the data are what they claim: the MLE is near the generating values
    assert abs(mle_scale - true_scale) < 0.1 * true_scale and abs(mle_df - true_df) < 1.0


def test_mixture_log_likelihood_is_the_log_of_the_average_density():
    locs, scales = randn(0, 4, 3, dtype=f64), F.softplus(randn(1, 4, 3, dtype=f64))
    dfs, targets = 1.0 + F.softplus(randn(2, 4, 3, dtype=f64)), 2.0 * randn(3, 3, dtype=f64)
    density = torch_t(locs, scales, dfs).log_prob(targets.expand(4, 3)).exp().mean(dim=0)
    got = metrics.student_t_mixture_log_likelihood(locs, scales, dfs, targets)
    assert got == pytest.approx(float(density.log().mean()), rel=1e-12)
    # one component: the plain mean log density
    one = metrics.student_t_mixture_log_likelihood(locs[:1], scales[:1], dfs[:1], targets)
    assert one == pytest.approx(float(torch_t(locs[0], scales[0], dfs[0]).log_prob(targets).mean()), rel=1e-12)


def test_mixture_samples_are_seeded_and_have_the_right_quantiles():
    state = torch.get_rng_state()
    locs = torch.tensor([[-1.0], [1.0]], dtype=f64)
    scales, dfs = torch.full((2, 1), 0.5, dtype=f64), torch.full((2, 1), 4.0, dtype=f64)
    draws = metrics.student_t_mixture_samples(7, locs, scales, dfs, 50_000)
    assert torch.equal(draws, metrics.student_t_mixture_samples(7, locs, scales, dfs, 50_000))
    assert torch.equal(state, torch.get_rng_state())
    # mixture CDF at 1 + 0.5 * 2.132 (t_4's 95% quantile): 0.5 * (0.95 + P(t_4 <= 6.132)) = 0.5 * (0.95 + 0.99821)
    # with 100k draws the empirical CDF has standard error sqrt(0.974 * 0.026 / 1e5) = 5e-4; tolerance 4 SE
    inside = float((draws <= 1.0 + 0.5 * 2.131847).double().mean())
    assert inside == pytest.approx(0.5 * (0.95 + 0.998208), abs=2e-3)
    assert float((draws <= 0.0).double().mean()) == pytest.approx(0.5, abs=2e-3)

"""The predictive distribution: closed forms, exact intervals, mixtures against scipy, recovery of known noise."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from fblitz import layers, likelihoods, optim
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.metrics import gaussian_mixture_log_likelihood, mutual_information, predictive_entropy
from fblitz.prediction import predict
from fblitz.predictive import (
    BernoulliMixture,
    CategoricalMixture,
    GaussianMixture,
    StudentTMixture,
    from_draws,
    predictive_distribution,
)
from fblitz.random import Key, normal
from fblitz.train import fit
from tests.helpers import randn

stats = pytest.importorskip("scipy.stats")
optimize = pytest.importorskip("scipy.optimize")

HETERO = likelihoods.heteroscedastic_gaussian(0.0)


def _gaussian(locs, scales):
    """A GaussianMixture with the given (S, B, D) components, through the heteroscedastic likelihood."""
    raw = torch.log(torch.expm1(scales))  # inverse softplus
    return from_draws(torch.cat([locs, raw], dim=-1), HETERO)


def _mixture_quantile(cdf, p):
    return optimize.brentq(lambda q: cdf(q) - p, -1e3, 1e3, xtol=1e-13)


def test_gaussian_mixture_moments_are_the_closed_forms():
    locs = torch.tensor([[[0.0]], [[2.0]]], dtype=torch.float64)  # S=2, B=1, D=1
    scales = torch.tensor([[[1.0]], [[3.0]]], dtype=torch.float64)
    pred = _gaussian(locs, scales)
    assert isinstance(pred, GaussianMixture) and pred.n_draws == 2 and pred.target_shape == (1, 1)
    assert pred.mean.item() == pytest.approx(1.0)
    assert pred.epistemic_variance.item() == pytest.approx(1.0)  # ((0-1)^2 + (2-1)^2) / 2
    assert pred.aleatoric_variance.item() == pytest.approx(5.0)  # (1 + 9) / 2
    assert pred.variance.item() == pytest.approx(6.0) and pred.std.item() == pytest.approx(math.sqrt(6.0))
    # the mixture's variance, by its definition E[y^2] - E[y]^2
    second_moment = ((scales**2 + locs**2).mean()).item()
    assert pred.variance.item() == pytest.approx(second_moment - 1.0)


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_gaussian_intervals_are_the_exact_mixture_quantiles(level):
    locs, scales = randn(0, 5, 4, 1).double(), F.softplus(randn(1, 5, 4, 1)).double() + 0.1
    pred = _gaussian(locs, scales)
    lower, upper = pred.interval(level)
    for row in range(4):
        cdf = lambda q, r=row: float(stats.norm.cdf(q, locs[:, r, 0], scales[:, r, 0]).mean())  # noqa: E731
        assert lower[row, 0].item() == pytest.approx(_mixture_quantile(cdf, (1 - level) / 2), abs=1e-9)
        assert upper[row, 0].item() == pytest.approx(_mixture_quantile(cdf, (1 + level) / 2), abs=1e-9)


def test_gaussian_log_prob_is_the_mixture_density_per_row():
    locs, scales = randn(2, 6, 3, 2).double(), F.softplus(randn(3, 6, 3, 2)).double() + 0.05
    y = randn(4, 3, 2).double()
    pred = _gaussian(locs, scales)
    expected = [
        math.log(
            sum(math.prod(stats.norm.pdf(y[b, d], locs[s, b, d], scales[s, b, d]) for d in range(2)) for s in range(6))
            / 6
        )
        for b in range(3)
    ]
    torch.testing.assert_close(pred.log_prob(y), torch.tensor(expected, dtype=torch.float64))
    # one target column: the per-element mixture log-likelihood of the metrics module
    one = _gaussian(locs[..., :1], scales[..., :1])
    expected = gaussian_mixture_log_likelihood(locs[..., :1], scales[..., :1], y[:, :1])
    assert -one.nll(y[:, :1]) == pytest.approx(expected)


def test_targets_drawn_from_the_predictive_are_covered_at_the_nominal_rate():
    locs, scales = 3 * randn(5, 20, 2000, 1).double(), F.softplus(randn(6, 20, 2000, 1)).double()
    pred = _gaussian(locs, scales)
    y = pred.sample(7, 1)[torch.randint(0, 20, (2000,), generator=torch.Generator().manual_seed(0)), torch.arange(2000)]
    for level in (0.5, 0.9, 0.95):
        # binomial standard error sqrt(p (1 - p) / 2000) <= 0.0112; 4 standard errors
        assert abs(pred.coverage(y, level) - level) < 0.045
    curve = pred.calibration_curve(y)
    assert curve.mean_absolute_error < 0.02
    # the exact calibration curve equals coverage through the intervals
    assert curve.observed[17].item() == pytest.approx(pred.coverage(y, 0.9), abs=1e-12)


def test_student_t_matches_scipy_and_its_sampled_intervals_the_exact_quantiles():
    torch.manual_seed  # noqa: B018 - the global RNG is never used here (conftest checks)
    locs = randn(8, 4, 3, 1).double()
    scales = F.softplus(randn(9, 4, 3, 1)).double() + 0.2
    dfs = 2.5 + 10 * torch.rand(4, 3, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    draws = torch.cat([locs, torch.log(torch.expm1(scales)), torch.log(torch.expm1(dfs - 1.0))], dim=-1)
    pred = from_draws(draws, likelihoods.student_t(None, min_sigma=0.0, min_df=1.0), key=3)
    assert isinstance(pred, StudentTMixture)
    torch.testing.assert_close(pred.dfs, dfs)
    y = randn(10, 3, 1).double()
    expected = [math.log(stats.t.pdf(y[b, 0], dfs[:, b, 0], locs[:, b, 0], scales[:, b, 0]).mean()) for b in range(3)]
    torch.testing.assert_close(pred.log_prob(y), torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(pred.aleatoric_variance, (scales**2 * dfs / (dfs - 2)).mean(0))
    lower, upper = pred.interval(0.9)
    for b in range(3):
        cdf = lambda q, b=b: float(stats.t.cdf(q, dfs[:, b, 0], locs[:, b, 0], scales[:, b, 0]).mean())  # noqa: E731
        # 4000 draws: the 5% quantile has a standard error near sqrt(.05 * .95 / 4000) / density, under 0.05 here
        assert lower[b, 0].item() == pytest.approx(_mixture_quantile(cdf, 0.05), abs=0.2)
        assert upper[b, 0].item() == pytest.approx(_mixture_quantile(cdf, 0.95), abs=0.2)
    assert torch.equal(pred.interval(0.9)[0], lower)  # the same key: the same intervals
    other = from_draws(draws, likelihoods.student_t(None, min_sigma=0.0, min_df=1.0), key=4)
    assert not torch.equal(other.interval(0.9)[0], lower)


def test_student_t_heavy_tails_have_infinite_variance_and_no_mean_below_one():
    locs, scales = torch.zeros(2, 3, 1), torch.ones(2, 3, 1)
    draws = torch.cat([locs, torch.log(torch.expm1(scales))], dim=-1)
    cauchy = from_draws(draws, likelihoods.student_t(1.5, min_sigma=0.0), key=0)
    assert torch.isinf(cauchy.variance).all()
    assert cauchy.mean.shape == (3, 1)
    below_one = from_draws(draws, likelihoods.student_t(0.5, min_sigma=0.0), key=0)
    with pytest.raises(FblitzValueError, match="no mean where a component's df <= 1"):
        _ = below_one.mean
    with pytest.raises(FblitzTypeError, match="key must be given for a Student-t predictive"):
        from_draws(draws, likelihoods.student_t(3.0))


def test_categorical_predictive_averages_probabilities_and_splits_the_entropy():
    logits = randn(11, 7, 5, 4).double()
    pred = from_draws(logits, likelihoods.categorical())
    assert isinstance(pred, CategoricalMixture)
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(pred.probs, probs.mean(0))
    labels = torch.tensor([0, 3, 1, 2, 3])
    torch.testing.assert_close(pred.log_prob(labels), torch.log(probs.mean(0)[torch.arange(5), labels]))
    torch.testing.assert_close(pred.entropy, predictive_entropy(probs))
    torch.testing.assert_close(pred.mutual_information, mutual_information(probs))
    torch.testing.assert_close(pred.entropy, pred.aleatoric_entropy + pred.mutual_information)
    assert torch.equal(pred.predicted_class, probs.mean(0).argmax(-1))
    with pytest.raises(FblitzValueError, match="a categorical predictive has no interval; use .probs"):
        pred.interval(0.9)
    with pytest.raises(FblitzValueError, match=r"class indices in \[0, 4\)"):
        pred.log_prob(torch.tensor([0, 4, 1, 2, 3]))


def test_bernoulli_predictive_is_the_two_class_categorical():
    logits = randn(12, 9, 6, 2).double()
    pred = from_draws(logits, likelihoods.bernoulli())
    assert isinstance(pred, BernoulliMixture)
    y = (randn(13, 6, 2) > 0).double()
    p = torch.sigmoid(logits)
    expected = torch.log((p * y + (1 - p) * (1 - y)).prod(-1).mean(0))
    torch.testing.assert_close(pred.log_prob(y), expected)
    two_class = torch.stack([1 - p, p], -1).reshape(9, 12, 2)
    torch.testing.assert_close(pred.entropy.reshape(-1), predictive_entropy(two_class))
    with pytest.raises(FblitzValueError, match="targets must hold 0 or 1"):
        pred.log_prob(y + 0.5)


def _noisy_model():
    return layers.serial(layers.linear(2, 8), layers.relu, layers.linear(8, 1), layers.learned_noise(1, 0.3))


def test_predictive_distribution_splits_weight_spread_and_learned_noise():
    model = _noisy_model()
    params = model.init(0)
    x = randn(14, 10, 2)
    pred = predictive_distribution(model, params, x, likelihood=HETERO, key=5, n_samples=40)
    draws = predict(model, params, x, key=Key(5).split(2)[0], n_samples=40)
    torch.testing.assert_close(pred.draws, draws)
    torch.testing.assert_close(pred.epistemic_variance, draws[..., :1].var(0, unbiased=False))
    torch.testing.assert_close(pred.aleatoric_variance, torch.full((10, 1), 0.09), rtol=1e-5, atol=1e-7)
    again = predictive_distribution(model, params, x, likelihood=HETERO, key=5, n_samples=40)
    assert torch.equal(again.interval(0.9)[1], pred.interval(0.9)[1])


def test_a_criterion_without_noise_model_is_refused_with_what_to_use():
    model = layers.serial(layers.linear(2, 4), layers.relu, layers.linear(4, 1))
    mse = likelihoods.criterion(F.mse_loss, "mse")
    with pytest.raises(FblitzValueError, match=r"likelihood mse has no noise model.*gaussian\(sigma=0.5 \*\* 0.5\)"):
        predictive_distribution(model, model.init(0), randn(0, 3, 2), likelihood=mse, key=0)
    with pytest.raises(FblitzValueError, match="has no noise model"):
        from_draws(randn(1, 4, 3, 1), F.mse_loss)
    # the Gaussian that the MSE loss is: the same gradients, so the same training
    fixed = likelihoods.gaussian(0.5**0.5)
    out, y = randn(2, 5, 1), randn(3, 5, 1)
    assert (fixed(out, y) - mse(out, y)).item() == pytest.approx(0.5 * math.log(math.pi), abs=1e-6)


def test_affine_maps_the_predictive_to_original_units():
    locs, scales = randn(15, 30, 4, 2).double(), F.softplus(randn(16, 30, 4, 2)).double()
    pred = _gaussian(locs, scales)
    shift, scale = torch.tensor([1.0, -2.0], dtype=torch.float64), torch.tensor([3.0, 0.5], dtype=torch.float64)
    moved = pred.affine(shift, scale)
    torch.testing.assert_close(moved.mean, shift + scale * pred.mean)
    torch.testing.assert_close(moved.std, scale * pred.std)
    y = randn(17, 4, 2).double()
    torch.testing.assert_close(moved.log_prob(shift + scale * y), pred.log_prob(y) - torch.log(scale).sum())
    torch.testing.assert_close(moved.interval(0.8)[0], shift + scale * pred.interval(0.8)[0])
    with pytest.raises(FblitzValueError, match="scale must be > 0"):
        pred.affine(0.0, -1.0)
    with pytest.raises(FblitzValueError, match=r"shift must be a number or have shape \(2,\) or \(4, 2\), got \(3,\)"):
        pred.affine(torch.zeros(3), 1.0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: p.interval(1.0), FblitzValueError, "level must lie strictly between 0 and 1"),
        (lambda p: p.interval("0.9"), FblitzTypeError, "level must be a real number"),
        (lambda p: p.log_prob(torch.zeros(4)), FblitzValueError, r"targets must have the shape of .* \(4, 1\)"),
        (lambda p: p.coverage(torch.zeros(4, 1, dtype=torch.long)), FblitzTypeError, "targets must be a floating"),
        (lambda p: p.calibration_curve(torch.zeros(4, 1), levels=[0.9, 0.5]), FblitzValueError, "strictly increasing"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call(_gaussian(torch.zeros(3, 4, 1), torch.ones(3, 4, 1)))


def test_bad_draws_are_refused():
    with pytest.raises(FblitzValueError, match=r"draws must have shape \(S, B, ...\)"):
        from_draws(torch.zeros(5), HETERO)
    with pytest.raises(FblitzValueError, match="the noise scales must be > 0"):
        from_draws(torch.cat([torch.zeros(2, 3, 1), torch.full((2, 3, 1), -200.0)], -1), HETERO)
    with pytest.raises(FblitzValueError, match=r"categorical draws must be logits of shape \(S, B, C\)"):
        from_draws(torch.zeros(2, 3), likelihoods.categorical())


def test_learned_noise_recovers_the_true_noise_and_its_intervals_cover():
    """y = x w + N(0, 0.3^2): the predictive's noise is learned near 0.3 and its 90% intervals cover about 90%."""
    key = Key(21)
    x = normal(key.fold_in(0), (1200, 2))
    y = x @ torch.tensor([[1.5], [-0.5]]) + 0.3 * normal(key.fold_in(1), (1200, 1))
    model = layers.serial(layers.linear(2, 1, posterior_rho_init=-5.0), layers.learned_noise(1, 1.0))
    result = fit(
        model, model.init(2), x[:1000], y[:1000], likelihood=HETERO, optimizer=optim.adam(0.03), key=3,
        epochs=40, batch_size=200, progress=False,
    )  # fmt: skip
    pred = predictive_distribution(model, result.params, x[1000:], likelihood=HETERO, key=4, n_samples=200)
    assert pred.aleatoric_variance.sqrt().mean().item() == pytest.approx(0.3, abs=0.03)
    # 200 test points: binomial s.e. 0.021 at 90%; the weight spread adds little with 1000 rows
    assert 0.84 <= pred.coverage(y[1000:], 0.9) <= 0.96
    assert pred.nll(y[1000:]) == pytest.approx(0.5 * math.log(2 * math.pi * 0.09) + 0.5, abs=0.15)

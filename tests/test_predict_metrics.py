import math

import pytest
import torch

from fblitz import metrics
from fblitz.errors import FblitzValueError
from fblitz.layers import Bayes, dropout, linear, relu, sample_noise, serial
from fblitz.metrics import gaussian_mixture_mean_std, mean_std_interval, predictive_mean_std, quantile_interval
from fblitz.prediction import predict, predict_mean_weights, predict_with_eps
from fblitz.random import sample_eps
from fblitz.tree import tree_leaves, tree_structure, tree_unflatten
from tests.helpers import mlp, randn


def test_predict_shapes_reproducibility_and_chunking():
    model = mlp(3, 8, 2, bayes=Bayes(rho_init=-2.0))
    params = model.init(0)
    x = randn(1, 10, 3)
    samples = predict(model, params, x, key=4, n_samples=7)
    assert samples.shape == (7, 10, 2)
    assert torch.equal(samples, predict(model, params, x, key=4, n_samples=7))
    chunked = predict(model, params, x, key=4, n_samples=7, batch_size=3)
    assert torch.allclose(samples, chunked, rtol=1e-6, atol=1e-7)
    eps = sample_eps(4, params, 7)
    first = tree_unflatten(tree_structure(eps), [leaf[0] for leaf in tree_leaves(eps)])
    assert torch.allclose(predict_with_eps(model, params, x, eps)[0], model.apply(params, x, first), atol=1e-6)


@pytest.mark.parametrize("estimator", ["reparameterization", "local_reparameterization", "flipout"])
@pytest.mark.parametrize("sample_batch_size", [1, 3, 7, 50])
def test_sample_groups_give_the_same_draws(estimator, sample_batch_size):
    # Grouping the draws changes only how many are evaluated per vectorized
    # call; each draw's noise (weights or per-example seeds) is the same.
    model = serial(
        linear(3, 8, bayes=Bayes(rho_init=-2.0)), relu, dropout(0.3), linear(8, 2, bayes=Bayes(rho_init=-2.0))
    )
    params = model.init(0)
    x = randn(1, 10, 3)
    whole = predict(model, params, x, key=4, n_samples=7, estimator=estimator)
    grouped = predict(model, params, x, key=4, n_samples=7, estimator=estimator, sample_batch_size=sample_batch_size)
    assert grouped.shape == whole.shape == (7, 10, 2)
    assert torch.allclose(grouped, whole, rtol=1e-6, atol=1e-7)
    # Row chunks reuse per-example noise across chunks (dropout here), so compare like with like.
    rows = predict(model, params, x, key=4, n_samples=7, estimator=estimator, batch_size=4)
    both = predict(
        model, params, x, key=4, n_samples=7, estimator=estimator, batch_size=4, sample_batch_size=sample_batch_size
    )
    assert torch.allclose(both, rows, rtol=1e-6, atol=1e-7)


def test_sample_batch_size_is_validated():
    model = mlp(3, 4, 1)
    params = model.init(0)
    with pytest.raises(FblitzValueError, match="sample_batch_size"):
        predict(model, params, randn(1, 5, 3), key=0, n_samples=4, sample_batch_size=0)


def test_mean_prediction_and_mean_std_of_draws():
    model = mlp(3, 4, 1)
    params = model.init(0)
    x = randn(1, 5, 3)
    assert torch.equal(predict_mean_weights(model, params, x), model.apply(params, x, None))
    mean, std = predictive_mean_std(predict(model, params, x, key=0, n_samples=10))
    samples = predict(model, params, x, key=0, n_samples=10)
    assert torch.equal(mean, samples.mean(0)) and torch.equal(std, samples.std(0))


def test_predictive_mean_std_needs_two_draws():
    with pytest.raises(FblitzValueError, match="at least 2 draws"):
        predictive_mean_std(torch.zeros(1, 3))


def test_intervals():
    mean, std = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])
    lower, upper = mean_std_interval(mean, std, k=3.0)
    assert torch.equal(lower, torch.tensor([-3.0, -5.0])) and torch.equal(upper, torch.tensor([3.0, 7.0]))
    samples = torch.arange(101, dtype=torch.float64).unsqueeze(1)
    lo, hi = quantile_interval(samples, 0.9)
    assert float(lo) == pytest.approx(5.0) and float(hi) == pytest.approx(95.0)
    with pytest.raises(FblitzValueError, match="strictly between"):
        quantile_interval(samples, 1.0)
    with pytest.raises(FblitzValueError, match="std must have the shape of mean"):
        mean_std_interval(mean, std[:1])


def test_gaussian_mixture_mean_std_adds_epistemic_and_aleatoric_variance():
    means = torch.tensor([[1.0], [3.0]])
    raw = torch.log(torch.expm1(torch.tensor([[1.0], [1.0]])))  # softplus(raw) = 1
    mean, std = gaussian_mixture_mean_std(torch.cat([means, raw], dim=-1).unsqueeze(1))
    assert torch.allclose(mean, torch.tensor([[2.0]]))
    assert torch.allclose(std, torch.tensor([[math.sqrt(1.0 + 1.0)]]), atol=1e-5)


def test_metrics_against_hand_computed_values():
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    pred = torch.tensor([1.0, 2.5, 2.0, 4.0])
    assert metrics.rmse(pred, y) == pytest.approx(math.sqrt((0.25 + 1.0) / 4))
    lower = torch.tensor([0.0, 2.5, 2.0, 4.5])
    upper = torch.tensor([2.0, 3.0, 2.5, 5.0])
    acc = metrics.interval_accuracy(y, lower, upper)
    assert acc == (0.25, 0.75, 0.5)  # inside: only y[0]; below upper: 0,1,3; above lower: 0,2
    assert metrics.mean_interval_width(lower, upper) == pytest.approx((2 + 0.5 + 0.5 + 0.5) / 4)
    std = torch.tensor([1.0, 0.5, 2.0, 1.0])
    expected = -torch.distributions.Normal(pred, std).log_prob(y).mean()
    assert metrics.gaussian_nll(pred, std, y) == pytest.approx(float(expected), rel=1e-6)
    with pytest.raises(FblitzValueError, match="std must be > 0"):
        metrics.gaussian_nll(pred, torch.zeros(4), y)
    with pytest.raises(FblitzValueError, match="targets must have the shape of predictions"):
        metrics.rmse(pred, y[:2])


def test_gaussian_mixture_log_likelihood():
    means = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, -1.0]], dtype=torch.float64)  # (S=3, N=2)
    stds = torch.tensor([[1.0, 0.5], [2.0, 0.5], [1.0, 3.0]], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0], dtype=torch.float64)
    density = torch.distributions.Normal(means, stds).log_prob(y).exp().mean(dim=0)
    expected = float(torch.log(density).mean())
    assert metrics.gaussian_mixture_log_likelihood(means, stds, y) == pytest.approx(expected, rel=1e-12)
    # one component is the Gaussian log-likelihood; far-off targets stay finite (log-sum-exp)
    assert metrics.gaussian_mixture_log_likelihood(means[:1], stds[:1], y) == pytest.approx(
        -metrics.gaussian_nll(means[0], stds[0], y)
    )
    far = metrics.gaussian_mixture_log_likelihood(means, stds * 1e-3, torch.tensor([1e3, -1e3], dtype=torch.float64))
    assert math.isfinite(far)
    with pytest.raises(FblitzValueError, match="targets must have the shape of means without its sample axis"):
        metrics.gaussian_mixture_log_likelihood(means, stds, y.unsqueeze(0))
    with pytest.raises(FblitzValueError, match="stds must be > 0"):
        metrics.gaussian_mixture_log_likelihood(means, -stds, y)


def test_predict_with_eps_checks_the_noise_tree():
    # Before: the S = 1 shortcut and the draw groups read S from the first leaf only, so
    # leaves with different sample counts silently lost draws; a noise-free model leaked vmap's error.
    model = mlp(3, 4, 1)
    params = model.init(0)
    x = randn(1, 2, 3)
    for total, first in ((6, 4), (3, 1)):
        eps = sample_noise(model, 0, params, total)
        eps["0"]["bias"] = eps["0"]["bias"][:first]
        with pytest.raises(FblitzValueError, match=rf"one leading sample count S, got \[{first}, {total}\]"):
            predict_with_eps(model, params, x, eps, sample_batch_size=4)
    deterministic = serial(relu)
    with pytest.raises(FblitzValueError, match="eps holds no tensors"):
        predict(deterministic, deterministic.init(0), x, key=0, n_samples=3)


def test_quantile_interval_of_half_precision_samples():
    samples = torch.arange(101.0).reshape(101, 1)
    lower, upper = quantile_interval(samples.half(), 0.9)
    assert lower.dtype == upper.dtype == torch.float16
    assert (float(lower), float(upper)) == (5.0, 95.0)


def test_non_finite_params_are_named_when_predictions_are_not_finite():
    from fblitz.errors import NonFiniteError
    from fblitz.prediction import predictive_moments

    model = serial(linear(3, 4), relu, linear(4, 1))
    params = model.init(0)
    params["2"]["weight"]["rho"][0, 1] = float("nan")
    with pytest.raises(NonFiniteError, match=r"the predictions are not finite: params at '2\.weight\.rho' hold NaN"):
        predict(model, params, randn(1, 5, 3), key=0, n_samples=3)
    with pytest.raises(NonFiniteError, match=r"moments are not finite: params at '2\.weight\.rho' hold NaN"):
        predictive_moments(model, params, randn(1, 5, 3))

"""Closed-form predictive moments (fblitz.moments) against Monte Carlo draws and hand-written formulas."""

import pytest
import torch
import torch.nn.functional as F

from fblitz import layers
from fblitz.distributions import sigma
from fblitz.errors import FblitzValueError
from fblitz.moments import predictive_moments
from fblitz.prediction import predict, predict_mean_weights
from tests.helpers import randn


def mc(model, params, x, n=200_000):
    draws = predict(model, params, x, key=11, n_samples=n, sample_batch_size=20_000)
    return draws.mean(dim=0), draws.var(dim=0)


def test_one_bayesian_linear_layer_is_the_gaussian_of_its_outputs():
    layer = layers.linear(4, 3, posterior_rho_init=-1.0)
    params = layer.init(0, dtype=torch.float64)
    x = randn(1, 5, 4, dtype=torch.float64)
    m = predictive_moments(layer, params, x)
    w, b = params["weight"], params["bias"]
    torch.testing.assert_close(m.mean, x @ w["mu"].T + b["mu"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m.var, x.square() @ sigma(w["rho"]).square().T + sigma(b["rho"]).square())
    assert m.exact and m.kind == "gaussian"


def test_one_hidden_layer_is_exact_against_many_draws():
    model = layers.serial(
        layers.linear(3, 32, posterior_rho_init=-1.5), layers.relu, layers.linear(32, 2, posterior_rho_init=-1.5)
    )
    params = model.init(0, dtype=torch.float64)
    x = randn(1, 6, 3, dtype=torch.float64)
    m = predictive_moments(model, params, x)
    mean, var = mc(model, params, x)
    # 200k draws: the Monte Carlo standard error of the mean is sqrt(var / 2e5) < 0.3% of the spread
    assert m.exact
    torch.testing.assert_close(m.mean, mean, rtol=0, atol=float(4 * (var / 2e5).sqrt().max()))
    torch.testing.assert_close(m.var, var, rtol=0.02, atol=0)


def test_deeper_networks_are_flagged_approximate_and_stay_close():
    model = layers.serial(
        layers.linear(3, 16, posterior_rho_init=-2.0), layers.relu,
        layers.linear(16, 16, posterior_rho_init=-2.0), layers.relu,
        layers.linear(16, 1, posterior_rho_init=-2.0),
    )  # fmt: skip
    params = model.init(0, dtype=torch.float64)
    x = randn(2, 4, 3, dtype=torch.float64)
    m = predictive_moments(model, params, x)
    mean, var = mc(model, params, x, n=100_000)
    assert not m.exact and m.kind == "approximate"
    # the diagonal approximation: same order of magnitude, not equal (correlations between units are dropped)
    assert torch.allclose(m.mean, mean, atol=0.05) and torch.allclose(m.var.sqrt(), var.sqrt(), rtol=0.5)


def test_without_weight_noise_the_moments_are_the_mean_network():
    model = layers.serial(layers.linear(3, 8, posterior_rho_init=-60.0), layers.relu, layers.linear(8, 2, freeze=True))
    params = model.init(0, dtype=torch.float64)
    x = randn(3, 5, 3, dtype=torch.float64)
    m = predictive_moments(model, params, x)
    torch.testing.assert_close(m.mean, predict_mean_weights(model, params, x), rtol=1e-10, atol=1e-12)
    assert float(m.var.max()) < 1e-15  # rounding of E[relu^2] - E[relu]^2 only


def test_row_chunks_give_the_same_moments_and_flatten_keeps_them():
    model = layers.serial(layers.flatten(), layers.linear(6, 8, posterior_rho_init=-2.0), layers.relu,
                          layers.linear(8, 1, posterior_rho_init=-2.0), layers.identity)  # fmt: skip
    params = model.init(0)
    x = randn(4, 37, 2, 3)
    whole = predictive_moments(model, params, x, batch_size=1000)
    chunked = predictive_moments(model, params, x, batch_size=5)
    torch.testing.assert_close(chunked.mean, whole.mean)
    torch.testing.assert_close(chunked.var, whole.var)


def test_layers_without_closed_form_moments_are_refused():
    for model in (
        layers.serial(layers.linear(3, 4), layers.tanh, layers.linear(4, 1)),
        layers.serial(layers.conv2d(1, 2, 3), layers.flatten(), layers.linear(8, 1)),
        layers.linear(3, 1, posterior="radial"),
    ):
        with pytest.raises(FblitzValueError, match="no closed-form moments"):
            predictive_moments(model, model.init(0), torch.ones(2, 3))
    with pytest.raises(FblitzValueError, match="shape"):
        layer = layers.linear(3, 1)
        predictive_moments(layer, layer.init(0), torch.ones(2, 4))


def test_relu_moments_match_the_rectified_gaussian():
    from fblitz.moments import GAUSSIAN, Moments, relu_moments

    mean = torch.tensor([-2.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    var = torch.tensor([1.0, 4.0, 0.25, 1e-12], dtype=torch.float64)
    out = relu_moments(Moments(mean, var, GAUSSIAN))
    z = torch.randn(1_000_000, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    draws = F.relu(mean + var.sqrt() * z)
    torch.testing.assert_close(out.mean, draws.mean(dim=0), rtol=0, atol=5e-3)
    torch.testing.assert_close(out.var, draws.var(dim=0), rtol=1e-2, atol=1e-4)

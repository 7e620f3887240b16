import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import vmap

from fblitz import layers, likelihoods, optim
from fblitz.errors import FblitzValueError
from fblitz.layers import apply_with_state, init_state, sample_noise
from fblitz.prediction import predict, predict_mean_weights
from fblitz.train import fit, make_train_step
from tests.helpers import randn


def _torch_bn(features, **kwargs):
    with torch.random.fork_rng():
        return torch.nn.BatchNorm2d(features, **kwargs).double()


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_state_matches_torch_module_over_steps(momentum):
    bn = layers.batch_norm2d(3, momentum=momentum)
    params = {"weight": randn(1, 3, dtype=torch.float64), "bias": randn(2, 3, dtype=torch.float64)}
    reference = _torch_bn(3, momentum=momentum)
    with torch.no_grad():
        reference.weight.copy_(params["weight"])
        reference.bias.copy_(params["bias"])
    state = init_state(bn, dtype=torch.float64)
    for seed in range(3):
        x = randn(10 + seed, 4, 3, 2, 5, dtype=torch.float64) * 2 + 1
        y, state = apply_with_state(bn, params, state, x, train=True)
        torch.testing.assert_close(y, reference.train()(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state["running_mean"], reference.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state["running_var"], reference.running_var, rtol=1e-12, atol=1e-12)
    assert int(state["num_batches_tracked"]) == int(reference.num_batches_tracked) == 3
    x = randn(20, 2, 3, 2, 2, dtype=torch.float64)
    evaluated, same = apply_with_state(bn, params, state, x, train=False)
    assert same is state
    torch.testing.assert_close(evaluated, reference.eval()(x), rtol=1e-12, atol=1e-12)


def test_batch_norm_errors():
    bn = layers.batch_norm1d(3)
    with pytest.raises(FblitzValueError, match="3 channels"):
        bn.apply(bn.init(0), torch.zeros(4, 2))
    with pytest.raises(FblitzValueError, match="more than one value per channel"):
        bn.apply(bn.init(0), torch.zeros(1, 3))
    with pytest.raises(FblitzValueError, match="momentum must lie in"):
        layers.batch_norm2d(3, momentum=2.0)


def test_serial_threads_state_and_freeze_keeps_it():
    model = layers.serial(layers.linear(3, 4), layers.batch_norm1d(4), layers.relu, layers.linear(4, 1))
    params = model.init(0)
    state = init_state(model)
    assert set(state) == {"0", "1", "2", "3"} and state["0"] == {} and "running_mean" in state["1"]
    x = randn(3, 16, 3)
    _, new_state = apply_with_state(model, params, state, x, train=True)
    assert int(new_state["1"]["num_batches_tracked"]) == 1
    assert not torch.equal(new_state["1"]["running_mean"], state["1"]["running_mean"])
    frozen = layers.freeze(model)
    eps = sample_noise(model, 1, params)
    y_frozen, _ = apply_with_state(frozen, params, new_state, x, eps, train=False)
    y_mean, _ = apply_with_state(model, params, new_state, x, None, train=False)
    assert torch.equal(y_frozen, y_mean)


def test_train_step_with_state_averages_sample_statistics():
    model = layers.serial(layers.linear(2, 3, posterior_rho_init=-1.0), layers.batch_norm1d(3, momentum=1.0))
    params = model.init(0, dtype=torch.float64)
    x, y = randn(4, 8, 2, dtype=torch.float64), randn(5, 8, 3, dtype=torch.float64)
    opt = optim.sgd(0.1)  # the state comes from the forward pass at the old params
    step = make_train_step(model, likelihoods.gaussian(), opt, n_samples=4)
    _, _, _, state = step.with_state(params, opt.init(params), init_state(model, dtype=torch.float64), 7, x, y)
    # momentum 1: the running mean is the mean over samples of each sample's batch mean
    eps = sample_noise(model, 7, params, 4)
    per_sample = torch.stack(
        [
            F.linear(
                x,
                params["0"]["weight"]["mu"] + F.softplus(params["0"]["weight"]["rho"]) * eps["0"]["weight"][i],
                params["0"]["bias"]["mu"] + F.softplus(params["0"]["bias"]["rho"]) * eps["0"]["bias"][i],
            ).mean(0)
            for i in range(4)
        ]
    )
    torch.testing.assert_close(state["1"]["running_mean"], per_sample.mean(0), rtol=1e-10, atol=1e-12)


def test_fit_returns_state_and_predict_uses_it():
    model = layers.serial(layers.linear(2, 8), layers.batch_norm1d(8), layers.relu, layers.linear(8, 1))
    x = randn(6, 64, 2)
    y = x.sum(dim=1, keepdim=True)
    result = fit(
        model,
        model.init(0),
        x,
        y,
        likelihood=likelihoods.gaussian(0.5),
        optimizer=optim.adam(0.01),
        key=1,
        epochs=3,
        batch_size=16,
        n_samples=2,
    )
    assert int(result.state["1"]["num_batches_tracked"]) == 12
    one_row = x[:1]
    # with running statistics a single row can be predicted; batch statistics would fail on it
    out = predict(model, result.params, one_row, key=2, n_samples=3, state=result.state)
    assert out.shape == (3, 1, 1)
    assert predict_mean_weights(model, result.params, one_row, state=result.state).shape == (1, 1)
    with pytest.raises(FblitzValueError, match="more than one value per channel"):
        predict(model, result.params, one_row, key=2, n_samples=3)
    plain = fit(
        layers.linear(2, 1),
        layers.linear(2, 1).init(0),
        x,
        y,
        likelihood=likelihoods.gaussian(),
        optimizer=optim.sgd(0.01),
        key=0,
        epochs=1,
        batch_size=32,
    )
    assert plain.state is None


def test_dropout_mask_rate_scaling_and_reproducibility():
    layer = layers.dropout(0.25)
    eps = sample_noise(layer, 3, {}, 2)
    x = torch.ones(200_000)
    y = vmap(layer.apply, in_dims=(None, None, 0))({}, x, eps)
    kept = (y != 0).double()
    # 2 * 10^5 Bernoulli(0.75) draws per mask: 5 standard errors = 0.0048, so a keep rate off by
    # half a percent fails; the two masks are independent (both keep 0.5625). Over 20 seeds the
    # largest |z| was 2.3.
    assert torch.all((kept.mean(dim=1) - 0.75).abs() < 5 * math.sqrt(0.75 * 0.25 / x.numel()))
    assert abs(float((kept[0] * kept[1]).mean()) - 0.5625) < 5 * math.sqrt(0.5625 * 0.4375 / x.numel())
    assert set(y.unique().tolist()) == {0.0, torch.tensor(1 / 0.75).item()}
    assert not torch.equal(y[0], y[1])
    assert torch.equal(y[0], layer.apply({}, x, {"seed": eps["seed"][0]}))
    assert torch.equal(layer.apply({}, x, None), x)
    with pytest.raises(FblitzValueError, match="p must be < 1"):
        layers.dropout(1.0)


def test_mc_dropout_network_trains_and_predicts_with_spread():
    model = layers.serial(layers.linear(1, 16), layers.relu, layers.dropout(0.2), layers.linear(16, 1))
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    result = fit(
        model,
        model.init(0),
        x,
        x.sin(),
        likelihood=likelihoods.gaussian(0.3),
        optimizer=optim.adam(0.01),
        key=0,
        epochs=2,
        batch_size=16,
        n_samples=2,
    )
    samples = predict(model, result.params, x, key=5, n_samples=4)
    assert samples.shape == (4, 64, 1) and bool(samples.std(dim=0).gt(0).any())

import math

import pytest
import torch

from fblitz import likelihoods, models, optim
from fblitz.errors import FblitzValueError
from fblitz.layers import init_state, is_stateful, sample_noise
from fblitz.posterior import mean_weights
from fblitz.prediction import predict
from fblitz.train import fit
from fblitz.tree import tree_map
from tests.helpers import randn
from tests.layer_registry import _lenet_reference


def test_lenet_with_zero_noise_is_the_deterministic_lenet():
    model = models.lenet(1, 10, input_size=8, padding=2)
    params = model.init(0, dtype=torch.float64)
    x = randn(1, 4, 1, 8, 8, dtype=torch.float64)
    zero = tree_map(torch.zeros_like, sample_noise(model, 0, params))
    expected = _lenet_reference(mean_weights(params), x)
    torch.testing.assert_close(model.apply(params, x, zero), expected, rtol=1e-12, atol=1e-12)
    assert models.lenet().apply(models.lenet().init(0), torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert params["7"]["weight"]["mu"].shape == (120, 64)
    with pytest.raises(FblitzValueError, match="too small for LeNet"):
        models.lenet(input_size=8)


@pytest.mark.parametrize("depth, convs", [(11, 8), (13, 10), (16, 13), (19, 16)])
def test_vgg_configurations(depth, convs):
    model = models.vgg(depth, width=0.0625)
    params = model.init(0)
    conv_nodes = [p for p in params.values() if p and p["weight"]["mu"].dim() == 4]
    assert len(conv_nodes) == convs
    assert model.name == f"vgg{depth}" and not is_stateful(model)
    assert models.vgg(depth, batch_norm=True, width=0.0625).name == f"vgg{depth}_bn"


def test_vgg_init_follows_blitz_and_predicts_under_vmap():
    model = models.vgg11(width=0.25, num_classes=5)
    params = model.init(3)
    first = params["0"]
    # He init: std sqrt(2 / (9 * 16)) = 0.118 over 432 weights (std error of the std ~ 0.004)
    assert abs(float(first["weight"]["mu"].std()) - math.sqrt(2 / (9 * 16))) < 0.015
    assert torch.equal(first["bias"]["mu"], torch.zeros(16))
    out = predict(model, params, randn(2, 3, 3, 32, 32), key=1, n_samples=2)
    assert out.shape == (2, 3, 5) and bool(torch.isfinite(out).all())


def test_vgg_bn_trains_with_running_statistics():
    model = models.vgg11_bn(width=0.0625, num_classes=3)
    assert is_stateful(model)
    x = randn(4, 8, 3, 32, 32)
    y = torch.arange(8) % 3
    params = model.init(0)
    result = fit(
        model,
        params,
        x,
        y,
        likelihood=likelihoods.categorical(),
        optimizer=optim.adam(1e-3),
        key=0,
        epochs=1,
        batch_size=4,
        n_samples=2,
    )
    bn_state = result.state["1"]
    assert int(bn_state["num_batches_tracked"]) == 2
    assert not torch.equal(bn_state["running_mean"], init_state(model)["1"]["running_mean"])
    out = predict(model, result.params, x[:1], key=1, n_samples=2, state=result.state)
    assert out.shape == (2, 1, 3)

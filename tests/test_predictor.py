"""make_predictor: built once, the same draws as predict, eager and compiled."""

import pytest
import torch

from fblitz import layers
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.prediction import predict
from fblitz.predictor import make_predictor
from tests.helpers import randn


def bn_model():
    return layers.serial(
        layers.linear(3, 8, posterior_rho_init=-2.0),
        layers.batch_norm1d(8),
        layers.relu,
        layers.linear(8, 2, posterior_rho_init=-2.0),
    )


@pytest.mark.parametrize("estimator", ["reparameterization", "local_reparameterization", "flipout"])
def test_eager_predictor_gives_predicts_draws(estimator):
    model = bn_model()
    params = model.init(0, dtype=torch.float64)
    state = layers.init_state(model, dtype=torch.float64)
    x = randn(1, 12, 3, dtype=torch.float64)
    predictor = make_predictor(model, state=state, estimator=estimator, sample_batch_size=3)
    got = predictor(params, x, key=7, n_samples=8)
    expected = predict(model, params, x, key=7, n_samples=8, state=state, estimator=estimator)
    assert got.shape == (8, 12, 2)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert not torch.equal(got[0], got[1])  # the draws differ
    assert torch.equal(predictor(params, x, key=7, n_samples=8), got)


def test_compiled_predictor_matches_eager():
    model = layers.serial(layers.linear(3, 16, posterior_rho_init=-2.0), layers.relu, layers.linear(16, 1))
    params = model.init(0)
    x = randn(2, 40, 3)
    compiled = make_predictor(model, compile=True, sample_batch_size=5)
    first = compiled(params, x, key=3, n_samples=10)
    torch.testing.assert_close(first, predict(model, params, x, key=3, n_samples=10), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(compiled(params, x, key=3, n_samples=10), first, rtol=0, atol=0)


def test_predictor_validates_its_arguments():
    model = layers.linear(3, 1)
    params = model.init(0)
    with pytest.raises(FblitzValueError, match="estimator"):
        make_predictor(model, estimator="bogus")
    with pytest.raises(FblitzValueError, match="sample_batch_size"):
        make_predictor(model, sample_batch_size=0)
    with pytest.raises(FblitzTypeError, match="model"):
        make_predictor(object())
    predictor = make_predictor(model)
    with pytest.raises(FblitzValueError, match="n_samples"):
        predictor(params, torch.ones(2, 3), key=0, n_samples=0)
    with pytest.raises((FblitzValueError, FblitzTypeError), match="inputs"):
        predictor(params, torch.ones(2, 3, dtype=torch.float64), key=0)

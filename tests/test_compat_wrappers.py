"""fblitz.compat's Flipout and Radial wrappers: on classes and on layers, nested in either order."""

import pickle

import pytest
import torch

from fblitz import kl
from fblitz.compat._module import Draw, sampling
from fblitz.compat.modules import BayesianConv2d, BayesianGRU, BayesianLinear, BayesianLSTM
from fblitz.compat.utils import Flipout, Radial
from fblitz.errors import FblitzTypeError
from tests.helpers import randn


def _twins(layer, cls):
    """Outputs for two identical examples (one sampling pass)."""
    x = randn(0, 1, 5, 2).expand(2, 5, 2) if cls in (BayesianLSTM, BayesianGRU) else randn(0, 1, 2).expand(2, 2)
    out = layer(x)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("cls", [BayesianLinear, BayesianLSTM, BayesianGRU])
@pytest.mark.parametrize(
    "wrap",
    [
        lambda cls: Radial(Flipout(cls))(2, 3, seed=0),
        lambda cls: Flipout(Radial(cls))(2, 3, seed=0),
        lambda cls: Radial(Flipout(cls)(2, 3, seed=0)),  # BLiTZ's own tests wrap a layer
        lambda cls: Flipout(Radial(cls(2, 3, seed=0))),
    ],
    ids=["radial-of-flipout-class", "flipout-of-radial-class", "radial-of-flipout-layer", "flipout-of-radial-layer"],
)
def test_nested_wrappers_give_radial_flipout_layers(cls, wrap):
    layer = wrap(cls)
    assert (layer._posterior, layer._estimator) == ("radial", "flipout")
    out = _twins(layer, cls)
    assert not torch.equal(out[0], out[1])  # Flipout: two identical examples get different outputs
    # the complexity cost is fblitz's Monte Carlo KL with the radial density, at the drawn weights
    x = randn(1, 4, 5, 2) if cls is not BayesianLinear else randn(1, 4, 2)
    eps = layer.draw_noise()
    assert "seed" in eps
    with sampling({layer: Draw(eps)}) as context:
        layer(x)
    log_q, log_p = context.log_terms[layer]
    prior = next(iter(layer._layer.priors.values()))
    assert prior.posterior == "radial"
    params = layer.variational_params()
    weights_eps = {name: eps[name] for name in params}
    expected = kl.kl_divergence(params, dict.fromkeys(params, prior), weights_eps, mode="monte_carlo")
    torch.testing.assert_close(log_q - log_p, expected)


def test_wrapping_a_layer_switches_it_in_place_and_keeps_its_parameters():
    layer = BayesianConv2d(1, 2, (3, 3), seed=0)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    same = Radial(layer)
    assert same is layer and type(layer) is BayesianConv2d and layer._posterior == "radial"
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())
    x = randn(2, 3, 1, 5, 5)
    norms = layer.draw_noise()["weight"].norm()
    assert float(norms) < 6  # a radial draw: half-normal length, not about sqrt(18)
    restored = pickle.loads(pickle.dumps(layer))  # a switched layer of a plain class still pickles
    assert restored._posterior == "radial" and restored(x).shape == layer(x).shape
    assert BayesianConv2d._posterior == "gaussian"  # the class is untouched


def test_wrappers_refuse_what_they_cannot_wrap():
    from fblitz.compat.modules import BayesianEmbedding

    with torch.random.fork_rng():
        plain = torch.nn.Linear(2, 2)
    for bad in (BayesianEmbedding, BayesianEmbedding(4, 2, seed=0), plain, 3):
        with pytest.raises(FblitzTypeError, match="wraps a compat Bayesian"):
            Radial(bad)

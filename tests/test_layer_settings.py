"""fblitz.layers.Bayes: one validated, immutable value for the Bayesian settings of every weight layer."""

import dataclasses
import hashlib
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fblitz import layers, models, priors
from fblitz.bridge import bayesify
from fblitz.compat import blitz_settings
from fblitz.compat.modules import BayesianConv2d, BayesianLinear
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers import Bayes


def _digest(tree) -> str:
    """A short hash of every leaf's path and bytes (the init must not change by one bit)."""
    h = hashlib.sha256()

    def walk(t, path=""):
        if isinstance(t, dict):
            for k in sorted(t):
                walk(t[k], f"{path}/{k}")
        else:
            h.update(path.encode())
            h.update(t.detach().contiguous().numpy().tobytes())

    walk(tree)
    return h.hexdigest()[:16]


def _torch_modules():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 4), nn.Conv1d(1, 1, 2)), nn.Linear(3, 4)


# (layer, key) -> digests of init(key) in float32 and float64, computed with the argument block
# that Bayes replaced (posterior_rho_init=..., etc.) before the change
BEFORE = {
    "linear": (lambda: layers.linear(3, 2), 0, "a82c2f642888ccd1 30958913e51f5044"),
    "linear_set": (
        lambda: layers.linear(4, 3, bias=False, bayes=Bayes(rho_init=-5.0, mu_std=0.2, mu_init=0.5, rho_std=0.05)),
        7,
        "5580a2ea7a5c74a7 ec90651bba87a7e1",
    ),
    "conv1d": (lambda: layers.conv1d(2, 2, 3), 1, "af33f20f40e2a7e2 ed01db0f96fae624"),
    "conv2d": (lambda: layers.conv2d(2, 3, 3), 2, "7eca99782d8faba2 cebefff2af759f93"),
    "conv3d": (lambda: layers.conv3d(1, 2, 2), 3, "28e3a483eda45c15 3f0be8a57ed82696"),
    "conv_transpose2d": (lambda: layers.conv_transpose2d(2, 3, 3), 4, "2b433ecb70ab1251 f5e20b2b4ff0bd54"),
    "embedding": (lambda: layers.embedding(5, 3, padding_idx=1), 5, "3a556af07cc0534f e1c937394851d418"),
    "lstm": (lambda: layers.lstm(3, 4, num_layers=2, bidirectional=True), 6, "f0e5c1737dfc7fa5 3a3f6b68c42a334d"),
    "gru": (lambda: layers.gru(2, 3, bayes=Bayes(rho_init=-4.0)), 8, "b40864b96601ba2d f9560e0051d628e2"),
    "rnn": (lambda: layers.rnn(2, 3, nonlinearity="relu"), 9, "b46f8bac6d74b8a0 388d3e8faa36232c"),
    "bayesify_blitz": (
        lambda: bayesify(_torch_modules()[0], init="blitz"),
        10,
        "8dbfd0b1825e4b09 f70f1fd697ebb442",
    ),
    "bayesify_rho": (
        lambda: bayesify(_torch_modules()[1], bayes=Bayes(rho_init=-4.0, rho_std=0.3)),
        11,
        "107c9f07f206dfe0 788cd1c008c785eb",
    ),
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_init_is_bit_identical_to_the_argument_block_it_replaced(name):
    make, key, expected = BEFORE[name]
    layer = make()
    got = f"{_digest(layer.init(key))} {_digest(layer.init(key, dtype=torch.float64))}"
    assert got == expected


def test_defaults_are_blitzs_per_layer():
    assert Bayes() == Bayes(
        prior=None, mu_init=0.0, mu_std=0.1, rho_init=None, rho_std=0.1, posterior="gaussian", freeze=False
    )
    cases = [
        (layers.linear(3, 2), -7.0, 0.4),
        (layers.conv1d(2, 2, 3), -7.0, 0.002),
        (layers.conv2d(2, 2, 3), -6.0, 0.002),
        (layers.conv_transpose3d(2, 2, 2), -6.0, 0.002),
        (layers.embedding(9, 4), -6.0, 0.002),
        (layers.gru(3, 4), -6.0, 0.002),
    ]
    for layer, rho, sigma_2 in cases:
        params = layer.init(0, dtype=torch.float64)
        rhos = torch.cat([node["rho"].flatten() for node in params.values()])
        assert abs(float(rhos.mean()) - rho) < 0.05, layer.name
        assert all(p == priors.scale_mixture(1.0, 0.1, sigma_2) for p in layer.priors.values()), layer.name


@settings(max_examples=25, deadline=None)
@given(
    mu_init=st.floats(-3, 3),
    mu_std=st.floats(0, 2),
    rho_init=st.floats(-8, 1),
    rho_std=st.floats(0, 2),
    key=st.integers(0, 2**31),
)
def test_init_is_the_affine_map_of_one_standard_draw(mu_init, mu_std, rho_init, rho_std, key):
    # the same key gives the same standard normals z whatever the settings: mu = mu_init + mu_std * z
    unit = Bayes(mu_std=1.0, rho_init=0.0, rho_std=1.0)
    chosen = Bayes(mu_init=mu_init, mu_std=mu_std, rho_init=rho_init, rho_std=rho_std)
    z = layers.conv1d(2, 3, 2, bayes=unit).init(key, dtype=torch.float64)
    params = layers.conv1d(2, 3, 2, bayes=chosen).init(key, dtype=torch.float64)
    for name in ("weight", "bias"):
        assert torch.allclose(params[name]["mu"], mu_init + mu_std * z[name]["mu"], rtol=0, atol=1e-12)
        assert torch.allclose(params[name]["rho"], rho_init + rho_std * z[name]["rho"], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"prior": 0.1}, FblitzTypeError, "prior must be a prior"),
        ({"mu_init": "zero"}, FblitzTypeError, "mu_init must be a real number"),
        ({"mu_init": math.nan}, FblitzValueError, "mu_init must be finite"),
        ({"mu_std": -0.1}, FblitzValueError, "mu_std must be >= 0"),
        ({"rho_init": "low"}, FblitzTypeError, "rho_init must be a real number"),
        ({"rho_std": -1}, FblitzValueError, "rho_std must be >= 0"),
        ({"posterior": "spherical"}, FblitzValueError, "posterior must be one of"),
        ({"estimator": "bbb"}, FblitzValueError, "estimator must be one of"),
        ({"posterior": "radial", "estimator": "local_reparameterization"}, FblitzValueError, "posterior='radial'"),
        ({"freeze": 1}, FblitzTypeError, "freeze must be True or False"),
    ],
)
def test_bad_fields_raise_naming_the_field(fields, error, match):
    with pytest.raises(error, match=match):
        Bayes(**fields)
    with pytest.raises(error, match=match):
        Bayes().replace(**fields)


def test_fields_are_keyword_only_and_blitz_names_are_not_fields():
    with pytest.raises(TypeError):
        Bayes(priors.gaussian(1.0))  # positional: refused
    with pytest.raises(TypeError, match="posterior_rho_init"):
        Bayes(posterior_rho_init=-3.0)


def test_replace_returns_a_validated_copy_and_the_value_is_immutable():
    settings = Bayes(prior=priors.gaussian(1.0), rho_init=-5)
    changed = settings.replace(estimator="flipout", mu_std=0.2)
    assert (changed.estimator, changed.mu_std, changed.rho_init, changed.prior) == (
        "flipout",
        0.2,
        -5.0,
        priors.gaussian(1.0),
    )
    assert (settings.estimator, settings.mu_std) == ("reparameterization", 0.1)
    assert isinstance(settings.rho_init, float)  # numbers are normalised to floats once
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.rho_init = -3.0
    with pytest.raises(FblitzTypeError, match=r"posterior_rho_init -> rho_init=\.\.\."):
        settings.replace(posterior_rho_init=-3.0)
    with pytest.raises(FblitzTypeError, match="unexpected keyword argument"):
        settings.replace(sigma=1.0)
    assert hash(settings) == hash(Bayes(prior=priors.gaussian(1.0), rho_init=-5.0))


def test_one_value_serves_every_layer_of_a_model():
    settings = Bayes(prior=priors.gaussian(1.0), rho_init=-4.0, estimator="flipout")
    model = layers.serial(layers.conv1d(1, 2, 3, bayes=settings), layers.flatten(), layers.linear(8, 1, bayes=settings))
    params = model.init(0)
    assert all(p == priors.gaussian(1.0) for layer in model.priors.values() for p in layer.values())
    assert layers.estimator_usage(model, params) == {"0": "flipout", "2": "flipout"}
    lenet = models.lenet(1, 3, input_size=8, padding=2, bayes=settings.replace(estimator="reparameterization"))
    assert all(p == priors.gaussian(1.0) for layer in lenet.priors.values() for p in layer.values())


CORE = [
    lambda **kw: layers.linear(3, 2, **kw),
    lambda **kw: layers.conv2d(1, 2, 3, **kw),
    lambda **kw: layers.conv_transpose1d(1, 2, 3, **kw),
    lambda **kw: layers.embedding(5, 3, **kw),
    lambda **kw: layers.lstm(3, 2, **kw),
    lambda **kw: layers.gru(3, 2, **kw),
    lambda **kw: layers.rnn(3, 2, **kw),
    lambda **kw: models.lenet(**kw),
    lambda **kw: models.vgg11(**kw),
    lambda **kw: bayesify(_torch_modules()[1], **kw),
]


@pytest.mark.parametrize("make", CORE)
@pytest.mark.parametrize(
    ("keyword", "hint"),
    [
        ("posterior_rho_init", r"posterior_rho_init -> rho_init=\.\.\."),
        ("prior_sigma_1", r"prior_sigma_1 -> prior=fblitz\.priors\.scale_mixture"),
        ("freeze", r"freeze -> freeze=\.\.\."),
        ("estimator", r"estimator -> estimator=\.\.\."),
    ],
)
def test_a_blitz_keyword_on_a_core_layer_points_to_bayes_and_compat(make, keyword, hint):
    with pytest.raises(FblitzTypeError, match=hint) as info:
        make(**{keyword: 0.5})
    assert "bayes=Bayes(" in str(info.value) and "fblitz.compat.blitz_settings" in str(info.value)


def test_blitz_settings_is_the_one_translation_of_blitzs_keywords():
    settings = blitz_settings(prior_pi=0.5, prior_sigma_1=1.0, prior_sigma_2=0.01, posterior_rho_init=-4)
    assert settings == Bayes(prior=priors.scale_mixture(0.5, 1.0, 0.01), rho_init=-4.0)
    assert blitz_settings().rho_init is None  # each layer keeps its own BLiTZ default
    with pytest.raises(FblitzValueError, match="prior_pi"):
        blitz_settings(prior_pi=2.0)
    with pytest.raises(FblitzTypeError, match="posterior_rho_init must be a real number"):
        blitz_settings(posterior_rho_init="low")
    with pytest.raises(FblitzValueError, match="posterior_mu_std must be >= 0"):
        blitz_settings(posterior_mu_std=-1.0)
    # the compat layers build their fblitz layer from it: same prior and init as the core layer
    compat = BayesianLinear(3, 2, prior_sigma_1=1.0, posterior_rho_init=-4.0, seed=0)
    core = layers.linear(3, 2, bayes=blitz_settings(prior_sigma_1=1.0, posterior_rho_init=-4.0))
    assert compat._layer.priors == core.priors
    assert _digest(compat._layer.init(3)) == _digest(core.init(3))
    conv = BayesianConv2d(1, 2, (3, 3), seed=0)
    assert conv._layer.priors == layers.conv2d(1, 2, 3).priors


def test_bad_bayes_values_are_refused():
    for make in CORE:
        with pytest.raises(FblitzTypeError, match="bayes must be a fblitz.layers.Bayes"):
            make(bayes={"rho_init": -3.0})
    with pytest.raises(FblitzValueError, match="an embedding has the Gaussian posterior only"):
        layers.embedding(5, 3, bayes=Bayes(posterior="radial"))
    with pytest.raises(FblitzValueError, match=r"estimator must be one of \['reparameterization', 'flipout'\]"):
        layers.lstm(3, 2, bayes=Bayes(estimator="local_reparameterization"))

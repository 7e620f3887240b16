"""Per-call estimators: an estimator no layer uses is an error; which layer uses which is visible and documented."""

import pathlib
import re

import pytest
import torch
from torch import nn

from fblitz import layers, likelihoods
from fblitz.bridge import bayesify
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.estimators import ESTIMATORS
from fblitz.layers import estimator_summary, estimator_usage, sample_noise
from fblitz.objectives import sample_elbo
from fblitz.prediction import predict
from tests.helpers import randn
from tests.hostile._expect import refuses

GUIDE = pathlib.Path(__file__).parents[2] / "docs" / "guides" / "estimators.md"


def _bridged():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return bayesify(nn.Linear(3, 2))


# one small instance per constructor named in the guide's table
BUILD = {
    "linear": lambda **kw: layers.linear(3, 2, **kw),
    "conv1d": lambda **kw: layers.conv1d(1, 2, 3, **kw),
    "conv2d": lambda **kw: layers.conv2d(1, 2, 3, **kw),
    "conv3d": lambda **kw: layers.conv3d(1, 2, 2, **kw),
    "conv_transpose1d": lambda **kw: layers.conv_transpose1d(1, 2, 3, **kw),
    "conv_transpose2d": lambda **kw: layers.conv_transpose2d(1, 2, 3, **kw),
    "conv_transpose3d": lambda **kw: layers.conv_transpose3d(1, 2, 2, **kw),
    "lstm": lambda **kw: layers.lstm(3, 2, **kw),
    "gru": lambda **kw: layers.gru(3, 2, **kw),
    "rnn": lambda **kw: layers.rnn(3, 2, **kw),
    "embedding": lambda **kw: layers.embedding(5, 3, **kw),
    "bayesify(module)": lambda **kw: _bridged() if not kw else bayesify(nn.Identity(), **kw),
    "batch_norm1d": lambda **kw: layers.batch_norm1d(3, **kw),
    "layer_norm": lambda **kw: layers.layer_norm(3, **kw),
    "learned_noise": lambda **kw: layers.learned_noise(1, **kw),
    "learned_df": lambda **kw: layers.learned_df(1, **kw),
    "dropout": lambda **kw: layers.dropout(0.1, **kw),
}


def _table() -> dict[str, list[str]]:
    """``{constructor: [reparameterization, local, flipout, radial]}`` from the guide's per-layer table."""
    text = GUIDE.read_text()
    section = text.split("## Which layer uses which estimator", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([^`]+)`", cells[0]):
            rows[name] = cells[1:]
    return rows


def test_correct_the_guides_table_names_every_layer_with_bayesian_weights():
    table = _table()
    assert set(table) == set(BUILD), set(table) ^ set(BUILD)


@pytest.mark.parametrize("name", sorted(BUILD))
def test_correct_the_guides_table_matches_the_code(name):
    marks = _table()[name]
    layer = BUILD[name]()
    params = layer.init(0)
    if marks[0] == "no Bayesian weights":
        assert all(estimator_usage(layer, params, e) == {} for e in ESTIMATORS)
        return
    for estimator, mark in zip(ESTIMATORS, marks[:3]):
        used = estimator_usage(layer, params, estimator)[""]
        assert (used == estimator) == (mark == "yes"), (name, estimator, used, mark)
    if marks[3] == "yes":  # a radial layer follows Flipout, not local reparameterization
        radial = BUILD[name](posterior="radial")
        assert estimator_usage(radial, radial.init(0), "flipout") == {"": "flipout"}
        assert estimator_usage(radial, radial.init(0), "local_reparameterization") == {"": "reparameterization"}
    else:
        with pytest.raises((FblitzTypeError, FblitzValueError, TypeError)):
            BUILD[name](posterior="radial")


def _lstm_linear():
    return layers.serial(layers.lstm(3, 4), lambda out: out[0], layers.linear(4, 1))


def test_correct_usage_and_summary_of_a_mixed_model():
    model = _lstm_linear()
    params = model.init(0)
    assert estimator_usage(model, params) == {"0": "reparameterization", "2": "reparameterization"}
    assert estimator_usage(model, params, "local_reparameterization") == {
        "0": "reparameterization",
        "2": "local_reparameterization",
    }
    assert estimator_summary(model, params, "flipout") == "estimators by layer: 0 flipout, 2 flipout"
    assert estimator_summary(model, params, "local_reparameterization") == (
        "estimators by layer: 0 reparameterization (no local_reparameterization), 2 local_reparameterization"
    )


def test_correct_a_radial_layer_keeps_its_own_under_local_reparameterization():
    model = layers.serial(layers.conv2d(1, 2, 3, posterior="radial"), layers.flatten(), layers.linear(8, 1))
    usage = estimator_usage(model, model.init(0), "local_reparameterization")
    assert usage == {"0": "reparameterization", "2": "local_reparameterization"}


def test_correct_a_model_without_bayesian_weights_says_so():
    model = layers.serial(layers.dropout(0.2), layers.relu)
    assert (
        estimator_summary(model, model.init(0)) == "estimators by layer: none (the model has no Bayesian weight layer)"
    )


def test_correct_a_supported_subset_trains_and_predicts():
    model = _lstm_linear()
    params = model.init(0)
    x, y = randn(0, 5, 2, 3), randn(1, 5, 2, 1)
    terms = sample_elbo(model, params, 0, x, y, likelihood=likelihoods.gaussian(), estimator="local_reparameterization")
    assert torch.isfinite(terms.loss)
    out = predict(model, params, x, key=0, n_samples=3, estimator="local_reparameterization")
    assert out.shape == (3, 5, 2, 1) and torch.isfinite(out).all()


REFUSED = {
    "lstm-local": (lambda: layers.lstm(3, 4), "local_reparameterization", "(model) reparameterization"),
    "embedding-flipout": (lambda: layers.embedding(5, 3), "flipout", "(model) reparameterization (no flipout)"),
    "bridge-flipout": (_bridged, "flipout", "reparameterization (no flipout)"),
    "radial-local": (
        lambda: layers.linear(3, 2, posterior="radial"),
        "local_reparameterization",
        "(model) reparameterization (no local_reparameterization)",
    ),
    "dropout-only-flipout": (lambda: layers.dropout(0.5), "flipout", "none"),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_refuses_an_estimator_no_layer_uses(case):
    build, estimator, summary = case
    model = build()
    params = model.init(0)
    refuses(
        lambda: sample_noise(model, 0, params, 2, estimator=estimator),
        FblitzValueError,
        f"estimator={estimator!r} is used by no layer",
        summary,
    )


def test_refuses_an_unknown_estimator_in_the_usage_tools():
    model = _lstm_linear()
    refuses(lambda: estimator_usage(model, model.init(0), "lrt"), FblitzValueError, "estimator", "'lrt'")
    refuses(lambda: estimator_summary(model, None), FblitzTypeError, "params", "None")

"""A params tree is checked against its model at every entry point (structure, shapes, dtypes, devices).

Each case that used to run silently (a broadcasting bias, another model's params,
an extra leaf, a criterion broadcasting (N,) targets against (N, 1) outputs) is
refused here with an error naming the path, the expected and the given.
"""

from __future__ import annotations

import os
import re

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fblitz import layers, likelihoods, optim
from fblitz.bridge import bayesify
from fblitz.checkpoint import load_checkpoint, save_checkpoint
from fblitz.errors import CheckpointError, FblitzTypeError, FblitzValueError
from fblitz.layers import Layer, apply_with_state, check_params, expected_params, init_state
from fblitz.objectives import negative_elbo, sample_elbo
from fblitz.prediction import predict, predict_mean_weights, predict_with_eps
from fblitz.predictor import make_predictor
from fblitz.train import fit, make_train_step
from fblitz.tree import tree_leaves, tree_map
from tests.helpers import randn
from tests.layer_registry import CASES


def _mlp(n_in=3, hidden=8, n_out=1):
    return layers.serial(layers.linear(n_in, hidden), layers.relu, layers.linear(hidden, n_out))


def _with(params, path, value):
    """A copy of ``params`` with ``value`` at ``path`` (``...`` removes the entry)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    out = dict(params)
    if not rest and value is ...:
        del out[head]
    else:
        out[head] = _with(params.get(head), rest, value)
    return out


X, Y = randn(0, 6, 3), randn(1, 6, 1)
MSE = likelihoods.criterion(F.mse_loss, "mse")
BROADCAST_BIAS = r"params at '0.bias.mu' must have shape \(8,\) for serial\(linear\(3, 8\).*got \(1,\)"


def _bad_bias(params):
    return _with(params, ("0", "bias"), {"mu": torch.zeros(1), "rho": torch.full((1,), -5.0)})


ENTRY_POINTS = {
    "apply": lambda m, p: m.apply(p, X),
    "apply_with_state": lambda m, p: apply_with_state(m, p, init_state(m), X, train=True),
    "predict": lambda m, p: predict(m, p, X, key=0, n_samples=2),
    "predict_with_eps": lambda m, p: predict_with_eps(m, p, X, layers.sample_noise(m, 0, m.init(0), 2)),
    "predict_mean_weights": lambda m, p: predict_mean_weights(m, p, X),
    "make_predictor": lambda m, p: make_predictor(m)(p, X, key=0, n_samples=2),
    "sample_elbo": lambda m, p: sample_elbo(m, p, 0, X, Y, likelihood=MSE, n_samples=2),
    "negative_elbo": lambda m, p: negative_elbo(m, p, layers.sample_noise(m, 0, m.init(0), 2), X, Y, likelihood=MSE),
    "make_train_step": lambda m, p: make_train_step(m, MSE, optim.adam(0.01))(p, optim.adam(0.01).init(p), 0, X, Y),
    "fit": lambda m, p: fit(
        m, p, X, Y, likelihood=MSE, optimizer=optim.adam(0.01), key=0, epochs=1, batch_size=3, progress=False
    ),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_entry_point_refuses_a_bias_that_would_broadcast(entry):
    model = _mlp()
    with pytest.raises(FblitzValueError, match=BROADCAST_BIAS):
        ENTRY_POINTS[entry](model, _bad_bias(model.init(0)))


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_entry_point_refuses_another_models_params(entry):
    model, other = _mlp(n_out=2), _mlp(n_out=1)
    with pytest.raises(FblitzValueError, match=r"params at '2.weight.mu' must have shape \(2, 8\) .*got \(1, 8\)"):
        ENTRY_POINTS[entry](model, other.init(0))


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_entry_point_names_a_missing_leaf_instead_of_a_key_error(entry):
    model = _mlp()
    params = _with(model.init(0), ("0", "bias"), ...)
    with pytest.raises(
        FblitzValueError, match=r"params is missing '0.bias' .*expected keys at '0' \['bias', 'weight'\]"
    ):
        ENTRY_POINTS[entry](model, params)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_entry_point_refuses_an_extra_leaf(entry):
    model = _mlp()
    params = _with(model.init(0), ("2", "scale"), torch.ones(1))
    with pytest.raises(FblitzValueError, match=r"params has unexpected '2.scale'"):
        ENTRY_POINTS[entry](model, params)


def test_the_trained_model_is_untouched_by_a_refused_call():
    model = _mlp()
    params = _bad_bias(model.init(0))
    before = tree_map(torch.clone, params)
    with pytest.raises(FblitzValueError):
        fit(model, params, X, Y, likelihood=MSE, optimizer=optim.adam(0.1), key=0, epochs=2, batch_size=3)
    assert all(torch.equal(a, b) for a, b in zip(tree_leaves(before), tree_leaves(params)))


def test_dtype_and_device_must_be_shared_by_every_leaf():
    model = _mlp()
    params = model.init(0)
    mixed = _with(params, ("2", "weight", "rho"), params["2"]["weight"]["rho"].double())
    with pytest.raises(FblitzValueError, match=r"params at '2.weight.rho' must be torch.float32 .* got torch.float64"):
        model.apply(mixed, X)
    meta = _with(params, ("2", "bias", "mu"), torch.empty(1, device="meta"))
    with pytest.raises(FblitzValueError, match=r"params at '2.bias.mu' must be on cpu .* got meta"):
        model.apply(meta, X)
    # float64 throughout is a valid tree of the same model
    assert model.apply(model.init(0, dtype=torch.float64), X.double()).dtype == torch.float64


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (None, FblitzTypeError, r"params must be a dict with keys \['0', '1', '2'\] .*got NoneType None"),
        ([], FblitzTypeError, r"params must be a dict with keys"),
        (
            {"0": None, "1": {}, "2": {}},
            FblitzTypeError,
            r"params at '0' must be a dict with keys \['bias', 'weight'\]",
        ),
    ],
)
def test_params_of_the_wrong_kind_are_type_errors(params, error, match):
    with pytest.raises(error, match=match):
        _mlp().apply(params, X)


def test_a_leaf_where_a_gaussian_node_belongs_is_named():
    model = _mlp()
    params = model.init(0)
    flat = _with(params, ("0", "weight"), params["0"]["weight"]["mu"])
    with pytest.raises(FblitzTypeError, match=r"params at '0.weight' must be a dict with keys \['mu', 'rho'\]"):
        model.apply(flat, X)


def test_criteria_refuse_targets_that_would_broadcast():
    model = _mlp()
    y_flat = Y.squeeze(1)  # (N,) against outputs (N, 1): F.mse_loss would average an (N, N) table
    with pytest.raises(FblitzValueError, match=r"criterion mse: targets must have the outputs' shape \(3, 1\).*\(3,\)"):
        fit(model, model.init(0), X, y_flat, likelihood=MSE, optimizer=optim.adam(0.01), key=0, epochs=1, batch_size=3)
    with pytest.raises(FblitzValueError, match=r"criterion mse_loss: targets must have the outputs' shape \(6, 1\)"):
        sample_elbo(model, model.init(0), 0, X, y_flat, likelihood=F.mse_loss)  # a bare callable too


def test_criteria_accept_class_indices_and_can_opt_out():
    logits, labels = randn(2, 5, 4), torch.tensor([0, 3, 1, 2, 3])
    ce = likelihoods.criterion(F.cross_entropy, "ce")
    assert torch.allclose(ce(logits, labels), F.cross_entropy(logits, labels))
    images, masks = randn(3, 2, 4, 5, 5), torch.zeros(2, 5, 5, dtype=torch.long)  # (N, C, H, W) and (N, H, W)
    assert torch.allclose(ce(images, masks), F.cross_entropy(images, masks))
    with pytest.raises(FblitzValueError, match=r"integer class indices of shape \(5,\)"):
        ce(logits, labels.float())
    sums = likelihoods.criterion(lambda out, y: (out - y.unsqueeze(1)).pow(2).mean(), "custom", check_shapes=False)
    assert sums(torch.zeros(4, 1), torch.ones(4)).item() == 1.0
    with pytest.raises(FblitzTypeError, match="check_shapes must be True or False"):
        likelihoods.criterion(F.mse_loss, check_shapes="no")


def test_a_checkpoint_of_another_model_is_refused_on_load(tmp_path):
    path = os.fspath(tmp_path / "run.ckpt")
    save_checkpoint(path, params=_mlp(hidden=4).init(0))
    assert load_checkpoint(path, model=_mlp(hidden=4)).params["0"]["weight"]["mu"].shape == (4, 3)
    with pytest.raises(CheckpointError, match=r"does not hold params of this model: the checkpoint's params at "):
        load_checkpoint(path, model=_mlp(hidden=8))


def _module(*sizes):
    with torch.random.fork_rng(devices=[]):  # nn.Linear draws its initial weights from the global RNG
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(*sizes[:2]), torch.nn.Tanh(), torch.nn.Linear(*sizes[1:]))


def test_bridged_models_are_checked_too():
    model = bayesify(_module(3, 4, 1))
    params = model.init(0)
    with pytest.raises(FblitzValueError, match=r"params at '2.bias.mu' must have shape \(1,\) for bayesify"):
        model.apply(_with(params, ("2", "bias"), {"mu": torch.zeros(4), "rho": torch.zeros(4)}), X)
    with pytest.raises(FblitzValueError, match=r"params at '0.weight.mu' must have shape \(4, 3\)"):
        predict(model, bayesify(_module(3, 5, 1)).init(0), X, key=0)


def test_the_reference_tree_is_built_once_per_model_and_dtype_on_the_meta_device():
    model = _mlp()
    reference = expected_params(model)
    assert expected_params(model) is reference
    assert expected_params(model, torch.float64) is not reference
    assert all(leaf.device.type == "meta" for leaf in tree_leaves(reference))
    shapes = tree_map(lambda t: (tuple(t.shape), t.dtype), model.init(0))
    assert tree_map(lambda t: (tuple(t.shape), t.dtype), reference) == shapes


def test_a_custom_layer_whose_init_cannot_use_meta_is_initialised_once_on_the_cpu():
    calls = []

    def init(key=None, *, dtype=None, device=None):
        calls.append(device)
        if device is not None and torch.device(device).type == "meta":
            raise RuntimeError("this init only works on the CPU")
        return {"scale": torch.rand(2, dtype=dtype)}  # the global RNG: the check forks it (conftest verifies)

    layer = Layer(init, lambda params, x, eps=None: x * params["scale"], {"scale": None}, "scaler")
    params = {"scale": torch.ones(2)}
    assert torch.equal(layer.apply(params, torch.ones(3, 2)), torch.ones(3, 2))
    assert torch.equal(layer.apply(params, torch.ones(3, 2)), torch.ones(3, 2))
    assert calls == ["meta", None]  # cached after the first check
    with pytest.raises(FblitzValueError, match=r"params at 'scale' must have shape \(2,\) for scaler, got \(3,\)"):
        layer.apply({"scale": torch.ones(3)}, torch.ones(3, 2))


def _first_leaf_path(tree, path=()):
    if isinstance(tree, torch.Tensor):
        return path
    for key in sorted(tree):
        found = _first_leaf_path(tree[key], (*path, key))
        if found is not None:
            return found
    return None


@pytest.mark.parametrize("case", [c for c in CASES if tree_leaves(c.make().init(0))], ids=lambda c: c.name)
def test_every_registered_layer_refuses_a_leaf_of_the_wrong_shape_or_an_extra_entry(case):
    layer = case.make()
    params = layer.init(0)
    inputs = case.inputs(torch.float32)
    x, extra = (inputs.x, inputs.extra) if hasattr(inputs, "extra") else (inputs, ())
    path = _first_leaf_path(params)
    leaf = params
    for key in path:
        leaf = leaf[key]
    grown = _with(params, path, torch.zeros(*leaf.shape[:-1], leaf.shape[-1] + 1) if leaf.dim() else torch.zeros(2))
    dotted = ".".join(path)
    with pytest.raises(
        FblitzValueError,
        match=re.escape(f"params at '{dotted}' must have shape {tuple(leaf.shape)}"),
    ):
        layer.apply(grown, x, None, *extra)
    with pytest.raises(FblitzValueError, match="params has unexpected 'zz_extra'"):
        layer.apply({**params, "zz_extra": torch.zeros(1)}, x, None, *extra)


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 3)),
    other=st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 3)),
)
def test_params_are_accepted_exactly_when_they_come_from_a_model_of_the_same_sizes(sizes, other):
    model, params = _mlp(*sizes), _mlp(*other).init(0)
    if sizes == other:
        check_params(model, params)
    else:
        with pytest.raises(FblitzValueError, match=r"params at '[02]\.(weight|bias)\.mu' must have shape"):
            check_params(model, params)

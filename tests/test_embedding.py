"""Bayesian embedding beyond the registry contract: padding_idx, max_norm, BLiTZ parity."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from fblitz import layers, priors
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.random import sample_eps
from tests import blitz_reference
from tests.helpers import clone_tree

X = torch.tensor([[3, 0, 3], [5, 1, 3]])


def test_blitz_default_initialisation():
    layer = layers.embedding(1000, 8)
    params = layer.init(0)
    mu, rho = params["weight"]["mu"], params["weight"]["rho"]
    assert mu.shape == rho.shape == (1000, 8)
    # BLiTZ: mu ~ N(0, 0.1^2), rho ~ N(-6, 0.1^2); 8000 draws give means within 0.01.
    assert abs(float(mu.mean())) < 0.01 and abs(float(mu.std()) - 0.1) < 0.01
    assert abs(float(rho.mean()) + 6) < 0.01 and abs(float(rho.std()) - 0.1) < 0.01
    assert layer.priors == {"weight": priors.scale_mixture(1.0, 0.1, 0.002)}


def test_lookup_is_mu_plus_sigma_eps_rows():
    layer = layers.embedding(6, 4, posterior_rho_init=0.0)
    params = layer.init(1, dtype=torch.float64)
    eps = sample_eps(2, params)
    w = params["weight"]["mu"] + F.softplus(params["weight"]["rho"]) * eps["weight"]
    torch.testing.assert_close(layer.apply(params, X, eps), w[X], rtol=1e-12, atol=1e-12)
    assert torch.equal(layer.apply(params, X, None), params["weight"]["mu"][X])
    assert torch.equal(layer.apply(params, X.int(), None), params["weight"]["mu"][X])


@pytest.mark.parametrize("padding_idx", [3, -3])
def test_padding_row_outputs_zero_and_gets_no_gradient_under_any_noise(padding_idx):
    layer = layers.embedding(6, 4, padding_idx=padding_idx, posterior_rho_init=0.0)
    params = layer.init(0)
    assert torch.equal(params["weight"]["mu"][3], torch.zeros(4))
    params["weight"]["mu"] = params["weight"]["mu"] + 1.0  # even a non-zero mu row stays silent
    eps = sample_eps(1, params, 5)
    ys = vmap(layer.apply, in_dims=(None, None, 0))(params, X, eps)
    padded = (X == 3).unsqueeze(-1).expand(5, *X.shape, 4)
    assert torch.equal(ys[padded], torch.zeros(int(padded.sum())))
    assert bool(ys[~padded].ne(0).all())

    def loss(p):
        return vmap(layer.apply, in_dims=(None, None, 0))(p, X, eps).exp().sum()

    grads = grad(loss)(params)
    for part in ("mu", "rho"):
        assert torch.equal(grads["weight"][part][3], torch.zeros(4))
        assert bool(grads["weight"][part][[0, 1, 5]].ne(0).all())


def test_max_norm_bounds_looked_up_rows_without_touching_params():
    layer = layers.embedding(6, 4, max_norm=0.5, posterior_rho_init=0.0)
    params = layer.init(2)
    before = clone_tree(params)
    eps = sample_eps(3, params)
    y = layer.apply(params, X, eps)
    assert bool((torch.linalg.vector_norm(y, dim=-1) <= 0.5 + 1e-6).all())
    weight = params["weight"]["mu"] + F.softplus(params["weight"]["rho"]) * eps["weight"]
    norms = torch.linalg.vector_norm(weight[X], dim=-1, keepdim=True)
    assert bool((norms > 0.5).any()) and bool((norms <= 0.5).any())
    expected = torch.where(norms > 0.5, weight[X] * 0.5 / (norms + 1e-7), weight[X])
    torch.testing.assert_close(y, expected)
    # torch's in-place renorm on a copy of the same draw agrees (and mutates that copy)
    copy = weight.detach().clone()
    torch.testing.assert_close(y, F.embedding(X, copy, max_norm=0.5))
    assert not torch.equal(copy, weight)
    assert all(torch.equal(params["weight"][k], before["weight"][k]) for k in ("mu", "rho"))


def test_scale_grad_by_freq_matches_torch_gradient():
    layer = layers.embedding(6, 4, scale_grad_by_freq=True, posterior_rho_init=-1.0)
    params = layer.init(3, dtype=torch.float64)
    mu = params["weight"]["mu"]
    ours = grad(lambda m: layer.apply({"weight": {"mu": m, "rho": params["weight"]["rho"]}}, X, None).sum())(mu)
    theirs = grad(lambda m: F.embedding(X, m, scale_grad_by_freq=True).sum())(mu)
    assert torch.equal(ours, theirs) and ours[3, 0] == 1.0  # index 3 appears three times


def test_vmap_over_indices():
    layer = layers.embedding(6, 4)
    params = layer.init(0)
    torch.testing.assert_close(vmap(lambda x: layer.apply(params, x, None))(X), layer.apply(params, X, None))


BAD_ARGUMENTS = [
    ((0, 4), {}, FblitzValueError, "num_embeddings"),
    ((6, 2.0), {}, FblitzTypeError, "embedding_dim"),
    ((6, 4), {"padding_idx": 6}, FblitzValueError, "padding_idx"),
    ((6, 4), {"padding_idx": -7}, FblitzValueError, "padding_idx"),
    ((6, 4), {"padding_idx": 1.0}, FblitzTypeError, "padding_idx"),
    ((6, 4), {"max_norm": 0.0}, FblitzValueError, "max_norm"),
    ((6, 4), {"norm_type": -1.0}, FblitzValueError, "norm_type"),
    ((6, 4), {"scale_grad_by_freq": 1}, FblitzTypeError, "scale_grad_by_freq"),
    ((6, 4), {"sparse": True}, FblitzValueError, "sparse"),
    ((6, 4), {"freeze": None}, FblitzTypeError, "freeze"),
    ((6, 4), {"prior_sigma_1": 0.0}, FblitzValueError, "prior_sigma_1"),
]


@pytest.mark.parametrize("args, kwargs, error, match", BAD_ARGUMENTS)
def test_bad_arguments_raise_naming_the_argument(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        layers.embedding(*args, **kwargs)


@pytest.mark.parametrize(
    "x, error, match",
    [
        (torch.tensor([0.0, 1.0]), FblitzTypeError, "int64 or int32"),
        (torch.tensor([0, 1], dtype=torch.int16), FblitzTypeError, "int64 or int32"),
        ([0, 1], FblitzTypeError, "tensor of indices"),
        (torch.tensor([0, 6]), FblitzValueError, r"\[0, 6\) \(num_embeddings\), got values in \[0, 6\]"),
        (torch.tensor([[-1, 2]]), FblitzValueError, "num_embeddings"),
    ],
)
def test_bad_inputs_raise(x, error, match):
    layer = layers.embedding(6, 4)
    with pytest.raises(error, match=match):
        layer.apply(layer.init(0), x)


def test_empty_input():
    layer = layers.embedding(6, 4)
    assert layer.apply(layer.init(0), torch.zeros(0, 3, dtype=torch.int64)).shape == (0, 3, 4)


def test_embedding_equals_blitz_on_the_same_noise(monkeypatch):
    blitz_modules = pytest.importorskip("blitz.modules")
    ours = layers.embedding(7, 3, posterior_rho_init=-3.0)
    params = ours.init(4, dtype=torch.float64)
    theirs = blitz_reference.build(blitz_modules.BayesianEmbedding, 7, 3)
    blitz_reference.load(theirs, params)
    x = torch.tensor([[6, 0, 2, 2], [1, 3, 6, 5]])
    y, eps = blitz_reference.forward_with_noise(monkeypatch, theirs, x, ["weight"])
    torch.testing.assert_close(ours.apply(params, x, eps), y, rtol=1e-12, atol=1e-12)
    assert torch.equal(ours.apply(params, x, None), blitz_reference.frozen_forward(theirs, params, x))

"""fblitz.bridge: choosing Bayesian parameters, initialisation (module, BLiTZ-like, MOPED), priors, gradcheck."""

import pytest
import torch
from torch import nn

from fblitz.bridge import bayesify, to_module
from fblitz.layers import Bayes, freeze, sample_noise
from fblitz.priors import gaussian
from fblitz.tree import tree_leaves
from fblitz.variational.distributions import gaussian_kl, sigma
from fblitz.variational.kl import kl_divergence
from fblitz.variational.moped import moped
from tests.bridge_cases import build, drawn_weights, run_module
from tests.helpers import randn
from tests.trees import tree_equal


class Mixed(nn.Module):
    """One module of each family with its own BLiTZ default, a frozen parameter, a tied weight and a buffer."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.conv1 = nn.Conv1d(3, 3, 1)
        self.conv2 = nn.Conv2d(1, 1, 1)
        self.gru = nn.GRU(3, 3)
        self.out = nn.Linear(3, 3)
        self.tied = nn.Linear(3, 3, bias=False)
        self.tied.weight = self.out.weight
        self.scale = nn.Parameter(torch.tensor(2.0), requires_grad=False)
        self.register_buffer("shift", torch.tensor(0.5))

    def forward(self, tokens):
        h = self.conv1(self.embed(tokens).transpose(1, 2)).transpose(1, 2)
        h = self.conv2(h.unsqueeze(1)).squeeze(1)
        h = self.gru(h.transpose(0, 1))[0].transpose(0, 1)
        return self.tied(self.out(h)) * self.scale + self.shift


def test_module_init_takes_the_weights_and_each_family_keeps_its_rho_default():
    net = build(Mixed)
    model = bayesify(net, bayes=Bayes(rho_std=0.0))
    params = model.init(0)
    assert "tied" not in params and "scale" not in params  # tied weight stored once; frozen is a constant
    expected_rho = {"embed": -6.0, "conv1": -7.0, "conv2": -6.0, "gru": -6.0, "out": -7.0}
    for name, value in net.named_parameters():
        if name in ("scale",) or name.startswith("tied"):
            continue
        owner, _, leaf = name.rpartition(".")
        node = params[owner][leaf]
        assert torch.equal(node["mu"], value.detach())
        assert torch.equal(node["rho"], torch.full_like(value, expected_rho[owner]))
    tokens = torch.tensor([[0, 1, 4], [3, 2, 2]])
    with torch.no_grad():
        torch.testing.assert_close(model.apply(params, tokens, None), net(tokens))
    params["out"]["weight"]["mu"] = params["out"]["weight"]["mu"] + 1.0  # the tie holds in the bridge and after
    with torch.no_grad():
        torch.testing.assert_close(to_module(model, params)(tokens), model.apply(params, tokens, None))


def test_blitz_init_draws_means_and_is_reproducible_from_the_key():
    net = build(lambda: nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Conv1d(1, 40, 1)))
    model = bayesify(net, init="blitz", bayes=Bayes(mu_std=0.1))
    params = model.init(3)
    assert tree_equal(params, model.init(3)) and not tree_equal(params, model.init(4))
    mu = params["0"]["weight"]["mu"]
    assert not torch.allclose(mu, net[0].weight.detach())
    assert abs(float(mu.mean())) < 0.02 and abs(float(mu.std()) - 0.1) < 0.01  # 600 draws of N(0, 0.1^2)
    assert abs(float(params["0"]["weight"]["rho"].mean()) + 7) < 0.02
    assert abs(float(params["2"]["weight"]["rho"].mean()) + 7) < 0.05  # conv1d: -7 as fblitz.layers.conv1d


def test_moped_option_is_fblitz_moped_on_the_module():
    net = build(lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)))
    model = bayesify(net, moped_delta=0.2)
    params = model.init(0)
    for name, w in net.named_parameters():
        owner, _, leaf = name.partition(".")
        torch.testing.assert_close(sigma(params[owner][leaf]["rho"]), 0.2 * w.detach().abs(), rtol=1e-5, atol=1e-12)
    # the params tree lines up with the module's state_dict: moped applies directly
    assert tree_equal(moped(bayesify(net).init(0), net, delta=0.2), params)


def test_point_estimates_have_no_prior_and_the_kl_is_the_gaussian_closed_form():
    net = build(lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)))
    model = bayesify(net, bayesian=lambda name, p: name.endswith("weight"), bayes=Bayes(prior=gaussian(0.5)))
    params = model.init(0)
    assert model.priors["0"]["bias"] is None and model.priors["2"]["weight"] == gaussian(0.5)
    expected = sum(gaussian_kl(params[k]["weight"]["mu"], params[k]["weight"]["rho"], 0.0, 0.5).sum() for k in "02")
    torch.testing.assert_close(kl_divergence(params, model.priors), expected)


def test_default_prior_is_blitz_n0_01():
    model = bayesify(build(lambda: nn.Linear(2, 2)))
    params = model.init(0)
    expected = sum(gaussian_kl(node["mu"], node["rho"], 0.0, 0.1).sum() for node in params.values())
    torch.testing.assert_close(kl_divergence(params, model.priors), expected)


def test_float64_params_cast_buffers_and_frozen_constants():
    net = build(Mixed)
    model = bayesify(net)
    params = model.init(0, dtype=torch.float64)
    assert {leaf.dtype for leaf in tree_leaves(params)} == {torch.float64}
    tokens = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        torch.testing.assert_close(model.apply(params, tokens, None), net.double()(tokens))


def test_gradcheck_float64_tiny_mlp():
    net = build(lambda: nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))).double()
    model = bayesify(net, bayesian="0.*", bayes=Bayes(rho_init=-1.0))
    params = model.init(0)
    x, eps = randn(1, 4, 2, dtype=torch.float64), sample_noise(model, 2, params)
    leaves = [params["0"]["weight"]["mu"], params["0"]["weight"]["rho"], params["0"]["bias"]["mu"]]
    leaves += [params["0"]["bias"]["rho"], params["2"]["weight"], x]

    def fn(w_mu, w_rho, b_mu, b_rho, w2, inputs):
        p = {"0": {"weight": {"mu": w_mu, "rho": w_rho}, "bias": {"mu": b_mu, "rho": b_rho}}}
        p["2"] = {"weight": w2, "bias": params["2"]["bias"]}
        return model.apply(p, inputs, eps)

    inputs = tuple(t.detach().clone().requires_grad_(True) for t in leaves)
    assert torch.autograd.gradcheck(fn, inputs)
    # and the draw is the module with mu + softplus(rho) * eps
    torch.testing.assert_close(fn(*leaves), run_module(net, drawn_weights(params, eps), x))


def test_freeze_keeps_the_bridge_for_to_module():
    net = build(lambda: nn.Linear(3, 2))
    model = freeze(bayesify(net))
    params = model.init(0)
    assert torch.equal(to_module(model, params).weight, net.weight)


@pytest.mark.parametrize("init", ["module", "blitz"])
def test_the_input_module_is_not_mutated(init):
    net = build(lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 1)))
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    model = bayesify(net, init=init)
    params = model.init(0)
    model.apply(params, randn(1, 6, 3), None)
    to_module(model, params)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in snapshot.items())
    assert net.training and all(m.training for m in net.modules())
    assert type(net[1]) is nn.BatchNorm1d  # the stand-ins live in the bridge's own copy


def test_a_bridged_sequential_is_the_matching_native_serial():
    from fblitz.layers import linear, relu, serial
    from fblitz.objectives import negative_elbo

    net = build(lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    model, native = bayesify(net, init="blitz"), serial(linear(4, 8), relu, linear(8, 2))
    params = model.init(0)
    native_params = {**params, "1": {}}  # serial keeps an empty entry for the parameter-free layer
    x, y = randn(1, 5, 4), randn(2, 5, 2)
    eps = sample_noise(model, 3, params, 4)
    native_eps = {**eps, "1": {}}
    assert torch.equal(sample_noise(native, 3, native_params, 4)["2"]["weight"], eps["2"]["weight"])
    terms = [
        negative_elbo(m, p, e, x, y, likelihood=torch.nn.functional.mse_loss, complexity_cost_weight=0.1)
        for m, p, e in ((model, params, eps), (native, native_params, native_eps))
    ]
    for a, b in zip(*terms):
        torch.testing.assert_close(a, b)

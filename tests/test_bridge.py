"""fblitz.bridge on every listed architecture: vmap == alone, zero noise == torch, gradients, round trip."""

import copy

import hypothesis
import hypothesis.strategies as st
import pytest
import torch
import torch.nn.functional as F

from fblitz import likelihoods
from fblitz.bridge import bayesify, to_module
from fblitz.layers import sample_noise, serial
from fblitz.objectives import sample_elbo
from fblitz.prediction import predict_mean_weights, predict_with_eps
from fblitz.tree import map_gaussian, tree_leaves, tree_map, tree_structure, tree_unstack
from tests.bridge_cases import CASE_IDS, CASES, build, drawn_weights, run_module
from tests.helpers import randn

ATOL, RTOL = 1e-5, 1e-4


def _close(a, b, **tolerance):
    for x, y in zip(tree_leaves(a), tree_leaves(b)):
        torch.testing.assert_close(x, y, **({"atol": ATOL, "rtol": RTOL} | tolerance))


@pytest.fixture(params=CASES, ids=CASE_IDS, scope="module")
def bridged(request):
    case = request.param
    net = build(case.make)
    # larger sigmas than BLiTZ's default so that the noise visibly matters
    model = bayesify(net, bayesian=case.bayesian, posterior_rho_init=-3.0)
    return case, net, model, model.init(0), case.inputs()


def test_sample_under_vmap_equals_module_run_alone_with_that_draw(bridged):
    case, net, model, params, x = bridged
    eps = sample_noise(model, 1, params, 3)
    batched = torch.func.vmap(model.apply, in_dims=(None, None, 0))(params, x, eps)
    for eps_i, sample_i in zip(tree_unstack(eps), tree_unstack(batched)):
        _close(sample_i, run_module(net, drawn_weights(params, eps_i), x, train=case.reference_train))
    samples = tree_leaves(batched)[0]
    assert not torch.allclose(samples[0], samples[1], atol=1e-4)  # the draws differ


def test_zero_noise_is_the_original_module(bridged):
    case, net, model, params, x = bridged
    zeros = tree_map(torch.zeros_like, sample_noise(model, 0, params))
    mean_params = model.init(0)  # init="module": the means are the module's own weights
    with torch.no_grad():
        expected = copy.deepcopy(net).train(case.reference_train)(x)
    _close(model.apply(mean_params, x, zeros), expected)
    _close(model.apply(mean_params, x, None), expected)
    if case.name in ("mlp", "cnn"):  # the same kernels run: bit-identical
        assert torch.equal(model.apply(mean_params, x, None), expected)


def test_gradients_are_finite_and_shaped_like_params(bridged):
    case, net, model, params, x = bridged
    first_output = serial(model, lambda out: tree_leaves(out)[0])  # LSTMs return tuples
    target = first_output.apply({"0": params, "1": {}}, x, None).detach() + 0.5

    def loss(p):
        return sample_elbo(first_output, {"0": p, "1": {}}, 2, x, target, likelihood=F.mse_loss, n_samples=3).loss

    grads = torch.func.grad(loss)(params)
    assert tree_structure(grads) == tree_structure(params)
    for g in tree_leaves(grads):
        assert torch.isfinite(g).all()
    assert sum(float(g.abs().sum()) for g in tree_leaves(grads)) > 0
    # point estimates (plain tensors in the tree) get gradients too
    point_grads = tree_leaves(map_gaussian(lambda node: (), grads, otherwise=lambda leaf: leaf))
    assert len(point_grads) == len(tree_leaves(map_gaussian(lambda node: (), params, otherwise=lambda t: t)))
    assert all(g.abs().sum() > 0 for g in point_grads)


def test_to_module_round_trip_matches_mean_prediction(bridged):
    case, net, model, params, x = bridged
    module = to_module(model, params)
    assert type(module) is type(net) and module is not net
    with torch.no_grad():
        out = module.train(case.reference_train)(x)
    _close(out, predict_mean_weights(model, params, x))
    # the module holds the means, not the module's original weights
    for name, value in drawn_weights(params, None).items():
        assert torch.equal(module.get_parameter(name).detach(), value)


def test_predict_runs_vmapped_over_draws(bridged):
    case, net, model, params, x = bridged
    first_output = serial(model, lambda out: tree_leaves(out)[0])  # predict wants tensors; LSTMs return tuples
    eps = sample_noise(model, 3, params, 2)
    samples = predict_with_eps(first_output, {"0": params, "1": {}}, x, {"0": eps, "1": ()})
    _close(samples[1], tree_leaves(model.apply(params, x, tree_unstack(eps)[1]))[0])


def test_fit_decreases_the_loss_and_trains_point_estimates():
    from fblitz import optim
    from fblitz.train import fit

    net = build(lambda: torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)))
    before = copy.deepcopy(net.state_dict())
    model = bayesify(net, bayesian="*.weight", init="blitz")
    params = model.init(0)
    x = torch.linspace(-2, 2, 64).unsqueeze(1)
    result = fit(model, params, x, 0.5 * x + 0.3, likelihood=likelihoods.gaussian(0.1), optimizer=optim.adam(5e-2),
                 key=1, epochs=15, batch_size=64, n_samples=2, progress=False)  # fmt: skip
    loss = result.history["loss"]
    assert loss[-1] < 0.2 * loss[0]
    for name in ("0", "2"):  # deterministic biases were trained
        assert not torch.equal(result.params[name]["bias"], params[name]["bias"])
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # input module untouched


@hypothesis.settings(max_examples=8)
@hypothesis.given(
    widths=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    bayesian=st.sampled_from(["*", "*.weight", "0.*", ("0.bias", "*.weight")]),
    init=st.sampled_from(["module", "blitz"]),
    seed=st.integers(0, 2**32),
)
def test_property_vmapped_draw_equals_the_module_with_that_draw(widths, bayesian, init, seed):
    def make():
        parts = [torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])]
        return torch.nn.Sequential(*(m for part in parts for m in (part, torch.nn.Tanh())))

    net = build(make, seed % 1000)
    model = bayesify(net, bayesian=bayesian, init=init, posterior_rho_init=-2.0)
    params, x = model.init(seed), randn(seed, 3, widths[0])
    eps = sample_noise(model, seed + 1, params, 2)
    batched = torch.func.vmap(model.apply, in_dims=(None, None, 0))(params, x, eps)
    for eps_i, sample_i in zip(tree_unstack(eps), batched):
        _close(sample_i, run_module(net, drawn_weights(params, eps_i), x))

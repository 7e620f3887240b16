"""Batch-norm running statistics through the bridge: updated in training, used in evaluation, never in place."""

import copy

import pytest
import torch
from torch import nn

from fblitz import likelihoods, optim
from fblitz.bridge import bayesify, to_module
from fblitz.layers import apply_with_state, init_state, is_stateful, sample_noise
from fblitz.prediction import predict_mean_weights
from fblitz.train import fit
from fblitz.tree import tree_leaves, tree_map, tree_unstack
from tests.bridge_cases import build, drawn_weights
from tests.helpers import randn


def _net(momentum=0.1):
    return build(
        lambda: nn.Sequential(
            nn.Linear(3, 6), nn.BatchNorm1d(6, momentum=momentum), nn.Tanh(), nn.Linear(6, 2), nn.BatchNorm1d(2)
        )
    )


def _torch_run(net, weights, state, x, train):
    """torch's module with ``weights`` and the running statistics ``state``: (output, buffers after the call)."""
    module = copy.deepcopy(net).train(train)
    with torch.no_grad():
        for name, value in weights.items():
            module.get_parameter(name).copy_(value)
        for name, value in tree_flat(state).items():
            module.get_buffer(name).copy_(value)
        out = module(x)
    return out, {name: b.clone() for name, b in module.named_buffers()}


def tree_flat(tree, prefix=""):
    out = {}
    for key, value in tree.items():
        out |= tree_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value}
    return out


@pytest.mark.parametrize("momentum", [0.1, None])
def test_training_updates_running_statistics_as_torch_does(momentum):
    net = _net(momentum)
    model = bayesify(net, bayesian="*.weight", init="blitz")
    params, x = model.init(0), randn(1, 8, 3)
    state = init_state(model)
    assert is_stateful(model) and sorted(tree_flat(state)) == sorted(name for name, _ in net.named_buffers())
    before = tree_map(torch.clone, state)
    eps = sample_noise(model, 2, params, 2)
    outs, states = torch.func.vmap(lambda e: apply_with_state(model, params, state, x, e, train=True))(eps)
    for eps_i, out_i, state_i in zip(tree_unstack(eps), outs, tree_unstack(states)):
        expected_out, expected_state = _torch_run(net, drawn_weights(params, eps_i), state, x, train=True)
        torch.testing.assert_close(out_i, expected_out)
        for name, value in tree_flat(state_i).items():
            torch.testing.assert_close(value, expected_state[name], msg=name)
    assert all(torch.equal(a, b) for a, b in zip(tree_leaves(state), tree_leaves(before)))  # not in place
    assert not torch.allclose(states["1"]["running_mean"][0], states["1"]["running_mean"][1])  # per-draw stats


def test_evaluation_uses_the_running_statistics_and_returns_them_unchanged():
    net = _net()
    model = bayesify(net)
    params, x = model.init(0), randn(2, 4, 3)
    state = tree_map(lambda t: t + 0.5 if t.is_floating_point() else t + 3, init_state(model))
    out, new_state = apply_with_state(model, params, state, x, None, train=False)
    assert new_state is state
    expected, _ = _torch_run(net, drawn_weights(params, None), state, x, train=False)
    torch.testing.assert_close(out, expected)
    # the plain apply normalises with the batch's statistics (fblitz's batch-norm convention)
    batch, _ = _torch_run(net, drawn_weights(params, None), state, x, train=True)
    torch.testing.assert_close(model.apply(params, x, None), batch)


def test_fit_trains_the_statistics_and_to_module_deploys_them():
    net = build(lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 1)))
    net_before = copy.deepcopy(net.state_dict())
    model = bayesify(net, bayesian=("0.weight", "4.weight"))
    x = randn(3, 16, 1, 6, 6)
    y = x.mean(dim=(1, 2, 3)).unsqueeze(1)
    result = fit(model, model.init(0), x, y, likelihood=likelihoods.gaussian(0.5), optimizer=optim.adam(1e-2), key=4,
                 epochs=3, batch_size=8, n_samples=2, progress=False)  # fmt: skip
    assert int(result.state["1"]["num_batches_tracked"]) == 6
    assert not torch.allclose(result.state["1"]["running_mean"], torch.zeros(4))
    assert not torch.equal(result.params["1"]["weight"], net[1].weight.detach())  # BN scale trained (point estimate)
    deployed = to_module(model, result.params, result.state).eval()
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), predict_mean_weights(model, result.params, x, state=result.state))
    assert torch.equal(deployed[1].running_var, result.state["1"]["running_var"])
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in net_before.items()) and net.training  # untouched


def test_initial_state_carries_the_module_statistics_and_casts():
    net = _net()
    with torch.no_grad():
        net[1].running_mean.fill_(0.25)
    model = bayesify(net)
    assert torch.equal(init_state(model)["1"]["running_mean"], torch.full((6,), 0.25))
    double = init_state(model, dtype=torch.float64)
    assert double["1"]["running_var"].dtype == torch.float64
    assert double["1"]["num_batches_tracked"].dtype == torch.int64
    params, x = model.init(0, dtype=torch.float64), randn(5, 4, 3, dtype=torch.float64)
    out, _ = apply_with_state(model, params, double, x, None, train=False)
    expected, _ = _torch_run(net.double(), drawn_weights(params, None), double, x, train=False)
    torch.testing.assert_close(out, expected)


def test_batch_norm_without_running_statistics_is_stateless():
    net = build(lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False)))
    model = bayesify(net)
    assert not is_stateful(model)
    params, x = model.init(0), randn(6, 5, 3)
    torch.testing.assert_close(model.apply(params, x, None), net.eval()(x).detach())

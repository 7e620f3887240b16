"""Params trees <-> state_dict-style flat dicts: bit-exact round trips and strict key checks."""

import io

import pytest
import torch

from fblitz import layers, optim
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.flat import from_flat_dict, to_flat_dict
from fblitz.tree import map_gaussian, tree_leaves, tree_map
from tests.trees import tree_equal

MODELS = {
    "mlp": lambda: layers.serial(layers.linear(3, 4), layers.relu, layers.linear(4, 2)),
    "lstm+noise": lambda: layers.serial(layers.lstm(2, 3), layers.learned_noise(1)),
    "conv+bn": lambda: layers.serial(layers.conv2d(1, 2, 3), layers.batch_norm2d(2), layers.flatten),
}


def perturbed(params, seed):
    # distinct, non-round values so a swapped or re-cast leaf cannot pass
    g = torch.Generator().manual_seed(seed)
    return tree_map(lambda t: t + torch.randn(t.shape, generator=g, dtype=t.dtype), params)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_is_bit_exact_also_through_torch_save(name):
    params = perturbed(MODELS[name]().init(0), 1)
    flat = to_flat_dict(params)
    assert len(flat) == len(tree_leaves(params))
    assert tree_equal(from_flat_dict(flat, like=params), params)
    buffer = io.BytesIO()
    torch.save(flat, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert tree_equal(from_flat_dict(loaded, like=MODELS[name]().init(5)), params)


def test_keys_line_up_with_torch_state_dict():
    model = MODELS["mlp"]()
    params = perturbed(model.init(0), 2)
    means = map_gaussian(lambda node: node["mu"], params, otherwise=lambda leaf: leaf)
    with torch.random.fork_rng():
        net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    net.load_state_dict(to_flat_dict(means))  # strict: same keys, same shapes
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(net(x), model.apply(params, x, None), rtol=0, atol=0)
    assert set(to_flat_dict(params)) == {f"{k}.{part}" for k in net.state_dict() for part in ("mu", "rho")}


def test_optimizer_state_round_trips():
    params = MODELS["mlp"]().init(0)
    opt = optim.adam(1e-2)
    _, state = opt.update(perturbed(params, 4), opt.init(params), params)
    flat = to_flat_dict(state)
    assert "1.0.weight.mu" in flat  # AdamState fields by position: count, mu, nu
    restored = from_flat_dict(flat, like=state)
    assert type(restored) is optim.AdamState and tree_equal(restored, state)


def test_missing_and_unexpected_keys_are_named():
    params = MODELS["mlp"]().init(0)
    flat = to_flat_dict(params)
    del flat["2.bias.rho"]
    with pytest.raises(FblitzValueError, match=r"missing \['2.bias.rho'\], unexpected none"):
        from_flat_dict(flat, like=params)
    flat = {**to_flat_dict(params), "2.bias.sigma": torch.zeros(2)}
    with pytest.raises(FblitzValueError, match=r"missing none, unexpected \['2.bias.sigma'\]"):
        from_flat_dict(flat, like=params)


def test_shape_dtype_and_type_mismatches_raise():
    params = MODELS["mlp"]().init(0)
    for bad, error, pattern in (
        (torch.zeros(2, 4, 1), FblitzValueError, r"flat\['2.weight.mu'\] must have like's shape, dtype and dev"),
        (torch.zeros(2, 4, dtype=torch.float64), FblitzValueError, "torch.float32 cpu, got .* torch.float64"),
        # another device (meta stands in for cuda on a CPU-only machine) was accepted silently
        (torch.zeros(2, 4, device="meta"), FblitzValueError, "torch.float32 cpu, got .* torch.float32 meta"),
        ([[0.0] * 4] * 2, FblitzTypeError, r"flat\['2.weight.mu'\] must be a tensor, got list"),
    ):
        with pytest.raises(error, match=pattern):
            from_flat_dict({**to_flat_dict(params), "2.weight.mu": bad}, like=params)
    with pytest.raises(FblitzTypeError, match="flat must be a mapping"):
        from_flat_dict(list(to_flat_dict(params).items()), like=params)


def test_keys_that_would_make_ambiguous_names_are_rejected():
    with pytest.raises(FblitzValueError, match="'a.b'"):
        to_flat_dict({"a.b": torch.zeros(1)})
    with pytest.raises(FblitzValueError, match="two leaves with the same dotted name '0'"):
        to_flat_dict({0: torch.zeros(1), "0": torch.ones(1)})  # one leaf was silently dropped
    with pytest.raises(FblitzTypeError, match="must hold only tensors"):
        to_flat_dict({"a": 1.0})

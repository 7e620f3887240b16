import optree
import pytest
import torch

from fblitz.errors import FblitzValueError
from fblitz.tree import flatten_gaussian, gaussian_items, is_gaussian, map_gaussian, path_name
from tests.trees import tree_allclose, tree_equal, tree_size, tree_stack, tree_sum, tree_unstack


def params():
    return {
        "0": {
            "weight": {"mu": torch.zeros(2, 3), "rho": torch.ones(2, 3)},
            "bias": {"mu": torch.zeros(2), "rho": torch.ones(2)},
        },
        "scale": torch.ones(1),
        "empty": {},
    }


def test_is_gaussian_needs_exactly_mu_and_rho():
    assert is_gaussian({"mu": 1, "rho": 2})
    assert not is_gaussian({"mu": 1})
    assert not is_gaussian({"mu": 1, "rho": 2, "extra": 3})
    assert not is_gaussian(torch.zeros(1))


def test_map_gaussian_visits_nodes_and_leaves():
    out = map_gaussian(lambda g: g["mu"].shape, params(), otherwise=lambda t: ("det", t.shape))
    assert out["0"]["weight"] == (2, 3)
    assert out["0"]["bias"] == (2,)
    assert out["scale"] == ("det", (1,))
    assert out["empty"] == {}


def test_map_gaussian_default_puts_empty_tuple_at_deterministic_leaves():
    out = map_gaussian(lambda g: 1, params())
    assert out["scale"] == ()
    assert optree.tree_leaves(out) == [1, 1]


def test_gaussian_items_paths_and_rest_trees():
    p = params()
    rest = map_gaussian(lambda g: g["rho"] * 2, p)
    items = gaussian_items(p, rest)
    assert [path_name(path) for path, *_ in items] == ["0.bias", "0.weight"]
    for _, node, doubled in items:
        assert torch.equal(doubled, node["rho"] * 2)


def test_gaussian_items_names_a_mismatched_tree():
    with pytest.raises(FblitzValueError, match="priors must follow the structure of params"):
        gaussian_items(params(), {"0": {}}, names=("priors",))


def test_flatten_gaussian_counts_nodes():
    nodes, _ = flatten_gaussian(params())
    assert sum(is_gaussian(n) for n in nodes) == 2 and len(nodes) == 3


def test_sum_size_and_comparisons():
    p = params()
    assert tree_size(p) == 6 + 6 + 2 + 2 + 1
    assert float(tree_sum(p)) == 6 + 2 + 1
    q = optree.tree_map(lambda t: t + 1e-9, p)
    assert tree_allclose(p, q) and not tree_equal(p, q) and tree_equal(p, p)


def test_stack_unstack_round_trip():
    trees = [params(), optree.tree_map(lambda t: t + 1, params())]
    stacked = tree_stack(trees)
    assert stacked["0"]["weight"]["mu"].shape == (2, 2, 3)
    back = tree_unstack(stacked)
    assert all(tree_equal(a, b) for a, b in zip(back, trees))


def test_unstack_rejects_ragged_leading_axes():
    with pytest.raises(FblitzValueError, match="leading axis"):
        tree_unstack({"a": torch.zeros(2), "b": torch.zeros(3)})
    with pytest.raises(FblitzValueError, match="non-empty"):
        tree_stack([])

import pytest
import torch

from fblitz import optim
from fblitz.errors import FblitzValueError
from fblitz.tree import tree_leaves, tree_map, tree_structure
from tests.helpers import assert_trees_equal, clone_tree, randn


def params_tree():
    weight = {"mu": randn(0, 4, 3, dtype=torch.float64), "rho": randn(1, 4, 3, dtype=torch.float64)}
    return {"layer": {"weight": weight}, "scale": randn(2, 2, dtype=torch.float64)}


def gradient_sequence(steps=25):
    return [
        tree_map(lambda t, i=i: randn(100 + i, *t.shape, dtype=torch.float64) * (1 + i % 3), params_tree())
        for i in range(steps)
    ]


def run_fblitz(transform, grads_seq):
    params = params_tree()
    state = transform.init(params)
    for grads in grads_seq:
        updates, state = transform.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    return params


def run_torch(make_optimizer, grads_seq):
    leaves = [leaf.clone().requires_grad_() for leaf in tree_leaves(params_tree())]
    opt = make_optimizer(leaves)
    for grads in grads_seq:
        for leaf, grad in zip(leaves, tree_leaves(grads)):
            leaf.grad = grad.clone()
        opt.step()
    return [leaf.detach() for leaf in leaves]


CASES = [
    ("sgd", lambda: optim.sgd(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    ("sgd momentum", lambda: optim.sgd(0.05, 0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    (
        "sgd dampening",
        lambda: optim.sgd(0.05, 0.9, dampening=0.3),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.3),
    ),
    (
        "sgd nesterov wd",
        lambda: optim.sgd(0.05, 0.8, nesterov=True, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
    ),
    ("adam", lambda: optim.adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (
        "adam betas",
        lambda: optim.adam(0.03, 0.5, 0.9, 1e-6),
        lambda p: torch.optim.Adam(p, lr=0.03, betas=(0.5, 0.9), eps=1e-6),
    ),
    ("adam wd", lambda: optim.adam(0.01, weight_decay=0.1), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1)),
    (
        "adamw",
        lambda: optim.adam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    ),
]


@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_optim(name, ours, theirs):
    grads_seq = gradient_sequence()
    got = tree_leaves(run_fblitz(ours(), grads_seq))
    want = run_torch(theirs, grads_seq)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12), name


@pytest.mark.parametrize(
    "make",
    [c[1] for c in CASES] + [lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.01))],
    ids=[c[0] for c in CASES] + ["chain"],
)
def test_contract_pure_deterministic_and_structure_preserving(make):
    transform = make()
    params, grads = params_tree(), gradient_sequence(1)[0]
    state = transform.init(params)
    before = (clone_tree(params), clone_tree(grads), clone_tree(state))
    updates, new_state = transform.update(grads, state, params)
    assert_trees_equal(params, before[0])
    assert_trees_equal(grads, before[1])
    assert_trees_equal(state, before[2])
    assert tree_structure(updates) == tree_structure(params)
    again, _ = transform.update(grads, state, params)
    assert_trees_equal(updates, again)
    assert tree_structure(new_state) == tree_structure(state)


def test_clip_by_global_norm():
    grads = {"a": torch.tensor([3.0, 0.0]), "b": torch.tensor([4.0])}
    clipped, _ = optim.clip_by_global_norm(1.0).update(grads, ())
    norm = torch.linalg.vector_norm(torch.cat([clipped["a"], clipped["b"]]))
    assert torch.allclose(norm, torch.tensor(1.0), atol=1e-5)
    small, _ = optim.clip_by_global_norm(10.0).update(grads, ())
    assert_trees_equal(small, grads)


def test_mismatched_trees_and_bad_arguments_are_errors():
    transform = optim.adam(0.01)
    state = transform.init(params_tree())
    with pytest.raises(FblitzValueError, match="state.mu must have the tree structure of grads"):
        transform.update({"other": torch.zeros(2)}, state)
    with pytest.raises(FblitzValueError, match="weight_decay needs params"):
        optim.sgd(0.1, weight_decay=0.1).update(params_tree(), optim.sgd(0.1).init(params_tree()))
    with pytest.raises(FblitzValueError, match="learning_rate must be > 0"):
        optim.adam(0.0)
    with pytest.raises(FblitzValueError, match="b1 must lie in"):
        optim.adam(0.1, b1=1.0)
    with pytest.raises(FblitzValueError, match="nesterov"):
        optim.sgd(0.1, nesterov=True)

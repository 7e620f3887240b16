"""One contract, every layer: shapes, purity, vmap == loop, zero noise == torch, gradients, devices.

The cases live in tests/layer_registry.py; a new layer is added there.
"""

import pytest
import torch
from torch.func import grad, vmap

from fblitz import layers
from fblitz.estimators import ESTIMATORS
from fblitz.layers import estimator_usage, sample_noise
from fblitz.posterior import mean_weights
from fblitz.tree import tree_flatten, tree_leaves, tree_map, tree_structure, tree_unflatten
from tests.helpers import assert_trees_equal, clone_tree
from tests.layer_registry import CASES, EXEMPT, Inputs

DTYPES = [torch.float32, torch.float64]
IDS = [case.name for case in CASES]
META = torch.device("meta")


def _with_dtype(x, dtype):
    return x if not isinstance(x, torch.Tensor) or not x.is_floating_point() else x.to(dtype)


def _apply(layer, params, x, eps):
    """``layer.apply`` on a case input: a bare ``x``, or ``Inputs(x, extra)`` for ``apply(params, x, eps, *extra)``."""
    if isinstance(x, Inputs):
        return layer.apply(params, x.x, eps, *x.extra)
    return layer.apply(params, x, eps)


def _build(case, dtype, seed=0):
    layer = case.make()
    params = layer.init(seed, dtype=dtype)
    return layer, params, case.inputs(dtype)


def _floats(tree):
    return [leaf for leaf in tree_leaves(tree) if leaf.is_floating_point()]


def _close(a, b, dtype):
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    leaves_a, leaves_b = tree_leaves(a), tree_leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for u, v in zip(leaves_a, leaves_b):
        torch.testing.assert_close(u, v, **tol)


def test_every_public_layer_constructor_is_registered():
    covered = {case.constructor for case in CASES}
    missing = set(layers.__all__) - covered - EXEMPT
    assert not missing, f"add these layers to tests/layer_registry.py: {sorted(missing)}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_shape_dtype_and_inputs_untouched(case, dtype):
    layer, params, x = _build(case, dtype)
    eps = sample_noise(layer, 1, params)
    before = (clone_tree(params), clone_tree(eps), clone_tree(x))
    out = _apply(layer, params, x, eps)
    assert tuple(tuple(leaf.shape) for leaf in tree_leaves(out)) == case.output_shape
    assert all(leaf.dtype == dtype for leaf in _floats(out))
    assert all(bool(torch.isfinite(leaf).all()) for leaf in tree_leaves(out))
    assert_trees_equal((params, eps, x), before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vmap_sample_i_equals_the_layer_on_eps_i(case, dtype):
    layer, params, x = _build(case, dtype)
    n = 3
    eps = sample_noise(layer, 2, params, n)
    if not tree_leaves(eps):
        pytest.skip("deterministic layer: no noise to map over")
    batched = vmap(lambda p, e: _apply(layer, p, x, e), in_dims=(None, 0))(params, eps)
    for i in range(n):
        alone = _apply(layer, params, x, tree_map_index(eps, i))
        _close(tree_map_index(batched, i), alone, dtype)
    # the samples differ: the noise is used
    assert not torch.equal(tree_leaves(tree_map_index(batched, 0))[0], tree_leaves(tree_map_index(batched, 1))[0])


def tree_map_index(tree, i):
    leaves, structure = tree_flatten(tree)
    return tree_unflatten(structure, [leaf[i] for leaf in leaves])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [c for c in CASES if c.reference is not None], ids=lambda c: c.name)
def test_zero_noise_equals_torch_layer_with_the_means(case, dtype):
    layer, params, x = _build(case, dtype)
    eps = sample_noise(layer, 3, params)
    expected = case.reference(mean_weights(params), x)
    _close(_apply(layer, params, x, None), expected, dtype)
    if all(leaf.is_floating_point() for leaf in tree_leaves(eps)):  # weight noise only (no seeds)
        _close(_apply(layer, params, x, tree_map(torch.zeros_like, eps)), expected, dtype)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_are_finite_and_shaped_like_params(case):
    layer, params, x = _build(case, torch.float32)
    eps = sample_noise(layer, 4, params)
    differentiable_x = isinstance(x, torch.Tensor) and x.is_floating_point()

    def loss(p, inputs):
        # a non-symmetric weighting, so normalisation layers get non-zero gradients
        outputs = tree_leaves(_apply(layer, p, inputs, eps))
        return sum((leaf * torch.linspace(-1, 2, leaf.numel()).view(leaf.shape)).sum() for leaf in outputs)

    grads, x_grad = grad(loss, argnums=(0, 1))(params, x) if differentiable_x else (grad(loss)(params, x), None)
    assert tree_structure(grads) == tree_structure(params)
    for g, p in zip(tree_leaves(grads), tree_leaves(params)):
        assert g.shape == p.shape and bool(torch.isfinite(g).all())
    if x_grad is not None:
        assert x_grad.shape == x.shape and bool(torch.isfinite(x_grad).all())
    assert any(bool(g.ne(0).any()) for g in tree_leaves((grads, x_grad)) if g is not None)


@pytest.mark.parametrize("case", [c for c in CASES if c.gradcheck], ids=lambda c: c.name)
def test_gradcheck_float64(case):
    layer, params, x = _build(case, torch.float64)
    eps = sample_noise(layer, 5, params)
    leaves, structure = tree_flatten(params)
    trainable = [i for i, leaf in enumerate(leaves) if leaf.is_floating_point()]
    differentiable_x = isinstance(x, torch.Tensor) and x.is_floating_point()
    inputs = tuple(leaves[i].detach().clone().requires_grad_(True) for i in trainable)
    if differentiable_x:
        inputs += (x.detach().clone().requires_grad_(True),)

    def fn(*values):
        current = list(leaves)
        for i, v in zip(trainable, values):
            current[i] = v
        inputs_x = values[-1] if differentiable_x else x
        return tuple(tree_leaves(_apply(layer, tree_unflatten(structure, current), inputs_x, eps)))

    # fast mode compares random projections of the Jacobian (its random vectors come from a
    # private, seeded RNG state); full mode only where there are few inputs
    fast = sum(t.numel() for t in inputs) > 150
    with torch.random.fork_rng():
        torch.manual_seed(0)
        assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, fast_mode=fast)


def _to_device(x, device):
    if isinstance(x, Inputs):
        return Inputs(x.x.to(device), tuple(tree_map(lambda t: t.to(device), e) for e in x.extra))
    return x.to(device)


def _layout(tree):
    """Shape, dtype and structure of a tree, without its device or values."""
    return tree_map(lambda t: (tuple(t.shape), t.dtype), tree)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_meta_device_every_tensor_follows_the_params(case, dtype):
    # meta tensors have shapes but no data, and mixing in a CPU tensor (other than a 0-dim one)
    # raises: a noise tensor or constant created without the params' device would fail here, as
    # it would on a GPU
    layer = case.make()
    params = layer.init(0, dtype=dtype, device=META)
    assert all(leaf.device == META for leaf in tree_leaves(params))
    cpu_params = layer.init(0, dtype=dtype)
    assert _layout(params) == _layout(cpu_params)
    x = _to_device(case.inputs(dtype), META)
    n = 2
    # every per-call estimator the layer follows (one it does not follow is an error in sample_noise)
    followed = [e for e in ESTIMATORS if e in estimator_usage(layer, cpu_params, e).values()]
    for estimator in (None, *followed):
        eps = sample_noise(layer, 1, params, n, estimator=estimator)
        if tree_leaves(params):  # a parameter-free layer (dropout) has no device to follow: its seeds stay on the CPU
            assert all(leaf.device == META for leaf in tree_leaves(eps)), estimator
        assert _layout(eps) == _layout(sample_noise(layer, 1, cpu_params, n, estimator=estimator)), estimator
        if tree_leaves(eps):
            outputs = tree_leaves(vmap(lambda e: _apply(layer, params, x, e))(eps))
            expected = tuple((n, *shape) for shape in case.output_shape)
        else:  # deterministic layer: nothing to map over
            outputs, expected = tree_leaves(_apply(layer, params, x, eps)), case.output_shape
        assert tuple(tuple(leaf.shape) for leaf in outputs) == expected, estimator
        assert all(leaf.device == META for leaf in outputs), estimator
        assert all(leaf.dtype == dtype for leaf in outputs if leaf.is_floating_point()), estimator
    frozen = tree_leaves(_apply(layer, params, x, None))
    assert all(leaf.device == META for leaf in frozen)

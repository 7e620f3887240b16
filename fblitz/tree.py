"""Pytree helpers; the only module that imports a pytree library.

fblitz keeps every model state in nested-dict pytrees. A *Bayesian* tensor is a
dict with exactly the keys ``"mu"`` and ``"rho"`` (a "Gaussian node", with
sigma = softplus(rho)); any other tensor leaf is a deterministic point estimate.
:func:`map_gaussian` is the one helper that knows about the Gaussian level;
everything else here is generic.

The generic helpers use optree (fast, dict keys in sorted order). While
``torch.compile`` traces a function they switch to ``torch.utils._pytree``,
which Dynamo understands natively (in torch 2.13 it cannot trace optree on
dicts created inside the compiled graph). Within one traced call every tree is
flattened by the same library, and :func:`check_same_structure` rejects trees
whose leaves would not line up.

Example:
    >>> import torch
    >>> params = {"weight": {"mu": torch.zeros(2, 3), "rho": torch.zeros(2, 3)},
    ...           "scale": torch.ones(1)}
    >>> tree_map(lambda t: tuple(t.shape), params)
    {'weight': {'mu': (2, 3), 'rho': (2, 3)}, 'scale': (1,)}
    >>> map_gaussian(lambda g: g["mu"].shape, params)
    {'weight': torch.Size([2, 3]), 'scale': ()}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optree
import torch
import torch.utils._pytree as torch_pytree

from fblitz.errors import FblitzTypeError, FblitzValueError

PyTree = Any

GAUSSIAN_KEYS = frozenset(("mu", "rho"))


def _tracing() -> bool:
    return torch.compiler.is_compiling()


def tree_map(fn: Callable, tree: PyTree, *rests: PyTree) -> PyTree:
    """Apply ``fn`` to every leaf of ``tree`` (and the matching leaves of ``rests``)."""
    if _tracing():
        return torch_pytree.tree_map(fn, tree, *rests)
    return optree.tree_map(fn, tree, *rests)


def tree_leaves(tree: PyTree) -> list:
    """The leaves of ``tree`` in a fixed order (sorted dict keys outside ``torch.compile``)."""
    return torch_pytree.tree_leaves(tree) if _tracing() else optree.tree_leaves(tree)


def tree_flatten(tree: PyTree) -> tuple[list, Any]:
    """``(leaves, structure)`` of ``tree``; :func:`tree_unflatten` inverts it."""
    return torch_pytree.tree_flatten(tree) if _tracing() else optree.tree_flatten(tree)


def tree_structure(tree: PyTree) -> Any:
    """The structure of ``tree`` (comparable with ``==``)."""
    return torch_pytree.tree_structure(tree) if _tracing() else optree.tree_structure(tree)


def tree_unflatten(structure: Any, leaves: list) -> PyTree:
    """Inverse of :func:`tree_flatten` for a structure it returned."""
    if isinstance(structure, optree.PyTreeSpec):
        return optree.tree_unflatten(structure, leaves)
    return torch_pytree.tree_unflatten(leaves, structure)


def check_same_structure(name: str, tree: PyTree, reference_structure: Any, reference_name: str) -> list:
    """The leaves of ``tree``, after checking it has ``reference_structure``."""
    leaves, structure = tree_flatten(tree)
    if structure != reference_structure:
        raise FblitzValueError(
            f"{name} must have the tree structure of {reference_name}: expected {reference_structure}, got {structure}"
        )
    return leaves


def is_gaussian(node: object) -> bool:
    """True for a Gaussian node: a dict whose keys are exactly ``mu`` and ``rho``."""
    return isinstance(node, dict) and node.keys() == GAUSSIAN_KEYS


def map_gaussian(
    fn: Callable,
    params: PyTree,
    *rests: PyTree,
    otherwise: Callable | None = None,
) -> PyTree:
    """Map ``fn`` over the Gaussian nodes of ``params``.

    Args:
        fn: called as ``fn(node, *rest_subtrees)`` for each ``{"mu", "rho"}`` node.
        params: a variational-parameter pytree.
        *rests: trees with ``params``' structure down to its Gaussian nodes and
            deterministic leaves (their subtrees there are passed whole).
        otherwise: called as ``otherwise(leaf, *rest_subtrees)`` for deterministic
            tensor leaves; by default they become the empty tuple ``()``, an empty
            subtree that both optree and ``torch.func.vmap`` skip.

    Returns:
        A tree with ``params``' structure down to those nodes.
    """
    if otherwise is None:

        def otherwise(leaf, *_):
            return ()

    def visit(node, *rest):
        return fn(node, *rest) if is_gaussian(node) else otherwise(node, *rest)

    return optree.tree_map(visit, params, *rests, is_leaf=is_gaussian, none_is_leaf=True)


def flatten_gaussian(params: PyTree) -> tuple[list, optree.PyTreeSpec]:
    """Flatten ``params`` down to its Gaussian nodes and deterministic leaves.

    Returns ``(nodes, structure)``; ``tree_unflatten(structure, values)``
    builds a tree with one value per node.
    """
    return optree.tree_flatten(params, is_leaf=is_gaussian, none_is_leaf=True)


def gaussian_items(params: PyTree, *rests: PyTree, names: tuple[str, ...] = ()) -> list[tuple]:
    """``(path, node, *rest_subtrees)`` for every Gaussian node of ``params``.

    ``path`` is the tuple of keys leading to the node (see :func:`path_name`).

    ``rests`` are cut at ``params``' Gaussian nodes and deterministic leaves;
    ``names`` (one per rest) label them in the error raised on a mismatch.
    """
    paths, nodes, spec = optree.tree_flatten_with_path(params, is_leaf=is_gaussian, none_is_leaf=True)
    columns = []
    for index, rest in enumerate(rests):
        label = names[index] if index < len(names) else f"tree {index + 1}"
        try:
            columns.append(spec.flatten_up_to(rest))
        except (ValueError, TypeError) as error:
            raise FblitzValueError(
                f"{label} must follow the structure of params down to its Gaussian nodes: {error}"
            ) from None
    return [
        (path, node, *(column[i] for column in columns))
        for i, (path, node) in enumerate(zip(paths, nodes))
        if is_gaussian(node)
    ]


def get_path(tree: PyTree, path: tuple) -> PyTree:
    """The subtree of ``tree`` reached by indexing with each key of ``path``."""
    for key in path:
        tree = tree[key]
    return tree


def find_path(tree: PyTree, path: tuple) -> PyTree | None:
    """Like :func:`get_path`, but None when ``tree`` has nothing at ``path``."""
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def path_name(path: tuple) -> str:
    """A dotted name for an optree path, e.g. ``("0", "weight") -> "0.weight"``."""
    return ".".join(str(part) for part in path) or "<root>"


def tree_sum(tree: PyTree) -> torch.Tensor:
    """Sum of all (scalar or tensor) leaves of ``tree`` as a 0-dim tensor."""
    leaves = [leaf.sum() for leaf in optree.tree_leaves(tree)]
    if not leaves:
        return torch.zeros(())
    total = leaves[0]
    for leaf in leaves[1:]:
        total = total + leaf
    return total


def tree_size(tree: PyTree) -> int:
    """Total number of tensor elements in ``tree``."""
    return sum(leaf.numel() for leaf in optree.tree_leaves(tree))


def tree_allclose(a: PyTree, b: PyTree, *, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """True when ``a`` and ``b`` have one structure and all leaves are close."""
    if optree.tree_structure(a) != optree.tree_structure(b):
        return False
    return all(torch.allclose(x, y, rtol=rtol, atol=atol) for x, y in zip(optree.tree_leaves(a), optree.tree_leaves(b)))


def tree_equal(a: PyTree, b: PyTree) -> bool:
    """True when ``a`` and ``b`` have one structure and bit-identical leaves."""
    if optree.tree_structure(a) != optree.tree_structure(b):
        return False
    return all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(optree.tree_leaves(a), optree.tree_leaves(b)))


def tree_stack(trees: list[PyTree]) -> PyTree:
    """Stack a list of same-structured trees along a new leading axis."""
    if not trees:
        raise FblitzValueError("trees must be a non-empty list of pytrees, got an empty list")
    return optree.tree_map(lambda *leaves: torch.stack(leaves), *trees)


def tree_unstack(tree: PyTree) -> list[PyTree]:
    """Split a tree whose leaves share a leading axis into a list of trees."""
    leaves, spec = optree.tree_flatten(tree)
    if not leaves:
        raise FblitzValueError("tree must have at least one tensor leaf to unstack")
    n = leaves[0].shape[0]
    if any(leaf.dim() == 0 or leaf.shape[0] != n for leaf in leaves):
        raise FblitzValueError(
            "every leaf of tree must share the leading axis to unstack, got shapes "
            f"{[tuple(leaf.shape) for leaf in leaves]}"
        )
    return [optree.tree_unflatten(spec, [leaf[i] for leaf in leaves]) for i in range(n)]


def check_tensor_leaves(name: str, tree: PyTree) -> None:
    """Raise unless every leaf of ``tree`` is a tensor."""
    for path, leaf in zip(*optree.tree_flatten_with_path(tree)[:2]):
        if not isinstance(leaf, torch.Tensor):
            raise FblitzTypeError(f"{name} must hold only tensors, got {type(leaf).__name__} at '{path_name(path)}'")

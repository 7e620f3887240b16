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


def tree_flatten_with_path(tree: PyTree) -> tuple[list[tuple], list, Any]:
    """``(paths, leaves, structure)`` of ``tree`` (eager only); ``tree_unflatten(structure, leaves)`` inverts it."""
    return optree.tree_flatten_with_path(tree)


def check_tensor_leaves(name: str, tree: PyTree) -> None:
    """Raise unless every leaf of ``tree`` is a tensor."""
    for path, leaf in zip(*tree_flatten_with_path(tree)[:2]):
        if not isinstance(leaf, torch.Tensor):
            raise FblitzTypeError(f"{name} must hold only tensors, got {type(leaf).__name__} at '{path_name(path)}'")

"""Tree helpers used only by tests: sums, sizes, comparisons, stacking."""

from __future__ import annotations

import optree
import torch

from fblitz.errors import FblitzValueError
from fblitz.tree import PyTree


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

"""Test helpers: explicit-key data, tree comparisons, a float64 MLP."""

from __future__ import annotations

import torch

from fblitz import layers
from fblitz.random import normal
from fblitz.tree import tree_leaves, tree_map


def randn(seed: int, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal test data from an explicit seed (never the global RNG)."""
    return normal(seed, shape, dtype=dtype)


def clone_tree(tree):
    return tree_map(lambda t: t.clone(), tree)


def assert_trees_equal(a, b):
    leaves_a, leaves_b = tree_leaves(a), tree_leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for x, y in zip(leaves_a, leaves_b):
        assert x.dtype == y.dtype and torch.equal(x, y)


def mlp(*widths: int, **linear_kwargs) -> layers.Layer:
    """linear -> relu -> ... -> linear with the given widths."""
    parts = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            parts.append(layers.relu)
        parts.append(layers.linear(n_in, n_out, **linear_kwargs))
    return layers.serial(*parts)


def to_double(tree):
    return tree_map(lambda t: t.double(), tree)

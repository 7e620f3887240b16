"""Params trees to and from ``state_dict``-style flat dicts (``"0.weight.mu"`` keys).

A flat dict maps a dotted path to each tensor leaf, the way
``torch.nn.Module.state_dict()`` does: ``params["0"]["weight"]["mu"]`` is
``flat["0.weight.mu"]``. It is the form to hand to ``torch.save``, to tools
that expect a ``state_dict``, or to compare two runs key by key.
:func:`from_flat_dict` needs a template tree (``model.init(...)`` or any
params of the same model) for the structure; it rejects missing and
unexpected keys and any shape, dtype or device that differs from the template's.

Example:
    >>> import torch
    >>> from fblitz import layers
    >>> model = layers.serial(layers.linear(3, 2), layers.relu, layers.linear(2, 1))
    >>> params = model.init(0)
    >>> flat = to_flat_dict(params)
    >>> sorted(flat)[:4]
    ['0.bias.mu', '0.bias.rho', '0.weight.mu', '0.weight.rho']
    >>> tuple(flat["2.weight.mu"].shape)
    (1, 2)
    >>> restored = from_flat_dict(flat, like=params)
    >>> torch.equal(restored["2"]["weight"]["mu"], params["2"]["weight"]["mu"])
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.tree import PyTree, check_tensor_leaves, tree_flatten_with_path, tree_unflatten

SEPARATOR = "."


def _named_leaves(tree: PyTree, name: str) -> tuple[list[str], list, Any]:
    check_tensor_leaves(name, tree)
    paths, leaves, spec = tree_flatten_with_path(tree)
    names = []
    for path in paths:
        parts = [str(part) for part in path]
        bad = [part for part in parts if SEPARATOR in part or not part]
        if bad:
            raise FblitzValueError(
                f"{name} has a key that cannot be part of a dotted name: {bad[0]!r} in path {tuple(path)}"
            )
        names.append(SEPARATOR.join(parts))
    if len(set(names)) != len(names):  # e.g. keys 0 and "0" of one dict: a leaf would be lost
        clash = next(n for n in names if names.count(n) > 1)
        raise FblitzValueError(f"{name} has two leaves with the same dotted name {clash!r}; give them distinct keys")
    return names, leaves, spec


def to_flat_dict(params: PyTree) -> dict[str, torch.Tensor]:
    """A flat ``{"dotted.path": tensor}`` dict of every tensor leaf of ``params``.

    Keys follow the tree's keys joined by ``"."`` (tuple/list positions become
    ``"0"``, ``"1"``, ...), in the tree's leaf order. The values are the
    tensors of ``params`` themselves (no copy), like ``state_dict()``.

    Args:
        params: a params (or any tensor) pytree; no key may contain ``"."``.

    Returns:
        dict mapping each leaf's dotted path to its tensor.

    Raises:
        FblitzTypeError: a leaf is not a tensor.
        FblitzValueError: a key is empty or contains ``"."``, or two leaves
            would get the same dotted name (e.g. keys ``0`` and ``"0"``).

    Example:
        >>> import torch
        >>> to_flat_dict({"weight": {"mu": torch.zeros(2), "rho": torch.ones(2)}, "scale": torch.ones(1)})
        {'scale': tensor([1.]), 'weight.mu': tensor([0., 0.]), 'weight.rho': tensor([1., 1.])}
    """
    names, leaves, _ = _named_leaves(params, "params")
    return dict(zip(names, leaves))


def from_flat_dict(flat: Mapping[str, torch.Tensor], like: PyTree) -> PyTree:
    """The tree with ``like``'s structure whose leaves are ``flat[dotted path]``.

    The inverse of :func:`to_flat_dict`: ``from_flat_dict(to_flat_dict(p), like=p)``
    holds the very tensors of ``p``. Tensors are used as given (no copy, no cast).

    Args:
        flat: mapping from dotted paths to tensors, e.g. a loaded ``torch.save``
            file or a ``state_dict`` written by :func:`to_flat_dict`.
        like: a tree with the wanted structure, shapes, dtypes and devices (e.g.
            ``model.init(0)``); only its structure and leaf metadata are read.

    Returns:
        a new tree with ``like``'s structure.

    Raises:
        FblitzValueError: ``flat`` lacks a key of ``like`` or has a key ``like``
            does not, or a tensor's shape, dtype or device differs from ``like``'s
            (load a ``torch.save`` file with ``map_location`` first).
        FblitzTypeError: ``flat`` is not a mapping or holds a non-tensor.

    Example:
        >>> import torch
        >>> like = {"weight": {"mu": torch.zeros(2), "rho": torch.zeros(2)}}
        >>> from_flat_dict({"weight.mu": torch.ones(2), "weight.rho": torch.ones(2)}, like)
        {'weight': {'mu': tensor([1., 1.]), 'rho': tensor([1., 1.])}}
    """
    if not isinstance(flat, Mapping):
        raise FblitzTypeError(f"flat must be a mapping from dotted names to tensors, got {type(flat).__name__}")
    names, template, spec = _named_leaves(like, "like")
    missing = [name for name in names if name not in flat]
    expected = set(names)
    unexpected = [key for key in flat if key not in expected]
    if missing or unexpected:
        raise FblitzValueError(
            f"flat must have exactly the keys of like: missing {missing or 'none'}, unexpected {unexpected or 'none'}"
        )
    leaves = []
    for name, reference in zip(names, template):
        value = flat[name]
        if not isinstance(value, torch.Tensor):
            raise FblitzTypeError(f"flat['{name}'] must be a tensor, got {type(value).__name__}")
        if (value.shape, value.dtype, value.device) != (reference.shape, reference.dtype, reference.device):
            raise FblitzValueError(
                f"flat['{name}'] must have like's shape, dtype and device {tuple(reference.shape)} "
                f"{reference.dtype} {reference.device}, got {tuple(value.shape)} {value.dtype} {value.device}"
            )
        leaves.append(value)
    return tree_unflatten(spec, leaves)

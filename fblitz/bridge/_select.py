"""Which parameters of a module become Bayesian, their BLiTZ-like defaults, dotted names as trees (internal)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable

import torch
from torch import nn

from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.priors import Prior, blitz_default
from fblitz.tree import GAUSSIAN_KEYS

Selector = str | Iterable[str] | Callable[[str, torch.Tensor], bool]


def select(named: dict[str, torch.Tensor], bayesian: Selector) -> set[str]:
    """The names in ``named`` chosen by ``bayesian``: fnmatch pattern(s) on dotted names, or a predicate.

    Every pattern must match at least one name, and something must be chosen.
    """
    names = list(named)
    if callable(bayesian):
        chosen = {name for name in names if bayesian(name, named[name])}
        what = "the bayesian predicate"
    else:
        patterns = (bayesian,) if isinstance(bayesian, str) else tuple(bayesian) if _iterable(bayesian) else None
        if not patterns or not all(isinstance(p, str) for p in patterns):
            raise FblitzTypeError(
                f"bayesian must be a name pattern, a non-empty sequence of patterns or a predicate "
                f"(name, parameter) -> bool, got {bayesian!r}"
            )
        chosen = set()
        for pattern in patterns:
            matched = {name for name in names if fnmatch.fnmatchcase(name, pattern)}
            if not matched:
                raise FblitzValueError(f"bayesian pattern {pattern!r} matches no trainable parameter of {names}")
            chosen |= matched
        what = f"bayesian={bayesian!r}"
    if not chosen:
        raise FblitzValueError(f"{what} chose none of the trainable parameters {names}")
    return chosen


def _iterable(value: object) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (bytes, dict))


# (posterior_rho_init, prior_sigma_2) of fblitz's own layer for each module family (BLiTZ's defaults)
_DEFAULTS = (
    ((nn.Conv1d,), (-7.0, 0.002)),
    ((nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), (-6.0, 0.002)),
    ((nn.RNNBase, nn.RNNCellBase, nn.Embedding), (-6.0, 0.002)),
)


def layer_defaults(owner: nn.Module) -> tuple[float, Prior]:
    """``(posterior_rho_init, prior)`` that fblitz's matching layer uses (linear's for anything else)."""
    rho, sigma_2 = -7.0, 0.4
    for kinds, values in _DEFAULTS:
        if isinstance(owner, kinds):
            rho, sigma_2 = values
            break
    return rho, blitz_default(0.1, sigma_2, 1.0)


def nest(flat: dict[str, object]) -> dict:
    """``{"0.weight": v}`` -> ``{"0": {"weight": v}}``.

    Example:
        >>> nest({"0.weight": 1, "0.bias": 2, "scale": 3})
        {'0': {'weight': 1, 'bias': 2}, 'scale': 3}
    """
    tree: dict = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def check_names(names: list[str]) -> None:
    """Refuse dotted names that would nest into a level named exactly ``mu`` and ``rho`` (a Gaussian node)."""
    _refuse_gaussian_lookalikes(nest(dict.fromkeys(names)), "")


def _refuse_gaussian_lookalikes(tree: dict, prefix: str) -> None:
    if tree.keys() == GAUSSIAN_KEYS:
        raise FblitzValueError(
            f"module: the names under '{prefix or '<root>'}' are exactly 'mu' and 'rho', which fblitz would read "
            "as a Gaussian node; rename them"
        )
    for key, value in tree.items():
        if isinstance(value, dict):
            _refuse_gaussian_lookalikes(value, f"{prefix}.{key}" if prefix else key)


def lookup(tree: object, name: str, what: str) -> object:
    """The entry of ``tree`` at dotted ``name``, or an error naming ``what`` and the name."""
    node = tree
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            raise FblitzValueError(f"{what} has no entry for the module's '{name}' (build it with the bridge's init)")
        node = node[part]
    return node

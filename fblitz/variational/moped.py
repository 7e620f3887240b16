"""MOPED: empirical-Bayes initialisation from deterministic weights (Krishnan et al. 2020).

Given the weights ``w`` of a trained deterministic network with the same
layout, :func:`moped` sets every Gaussian node to ``mu = w`` and ``sigma =
delta * |w|`` (BLiTZ's ``MOPED_``), and :func:`recentre_priors` optionally
moves the prior of every weight to ``N(w, prior_sigma^2)``.

The weights can be given as

* a tree with the params' structure and a tensor where params has a
  ``{"mu", "rho"}`` node;
* a flat ``state_dict``-style mapping of dotted names (``"0.weight"`` is
  ``params["0"]["weight"]``), e.g. ``module.state_dict()``;
* a ``torch.nn.Module`` -- its ``state_dict()``; an ``nn.Sequential`` with the
  same layer positions as a :func:`fblitz.layers.serial` model lines up
  directly (activations count as positions in both).

Entries of a mapping that match no Gaussian node (buffers, other layers) are
ignored; a Gaussian node without a matching entry is an error.

Example:
    >>> import torch
    >>> from fblitz.layers import linear
    >>> with torch.random.fork_rng():
    ...     net = torch.nn.Linear(3, 2)
    >>> params = moped(linear(3, 2).init(0), net, delta=0.1)
    >>> torch.equal(params["weight"]["mu"], net.weight.detach())
    True
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers.base import Layer
from fblitz.tree import PyTree, gaussian_items, get_path, map_gaussian, path_name
from fblitz.variational.distributions import LOG_SQRT_2PI
from fblitz.variational.posterior import moped_node
from fblitz.variational.radial import RadialPrior, radial_prior


def weights_for(params: PyTree, weights: object) -> PyTree:
    """``weights`` (tree, mapping or module) as a tree with a tensor at each Gaussian node of ``params``."""
    if isinstance(weights, torch.nn.Module):
        weights = weights.state_dict()
    if not isinstance(weights, dict):
        raise FblitzTypeError(f"weights must be a params-shaped tree, a state_dict or an nn.Module, got {weights!r}")
    # a state_dict maps dotted names to tensors; a params-shaped tree nests dicts
    flat = weights if all(isinstance(v, torch.Tensor) for v in weights.values()) else None

    def lookup(path):
        if flat is not None:
            return flat.get(".".join(str(k) for k in path))
        try:
            value = get_path(weights, path)
        except (KeyError, TypeError, IndexError):
            return None
        return value if isinstance(value, torch.Tensor) else None

    found, missing = {}, []
    for path, node in gaussian_items(params):
        value = lookup(path)
        if value is None:
            missing.append(path_name(path))
            continue
        _checks.tensor(f"weights at '{path_name(path)}'", value, floating=True, finite=True)
        _checks.same_shape(f"weights at '{path_name(path)}'", value, node["mu"].shape, "the params' mu")
        found[path] = value.detach().to(dtype=node["mu"].dtype, device=node["mu"].device)
    if missing:
        raise FblitzValueError(f"weights has no tensor for the Gaussian node(s) {missing}")
    paths = iter(found)  # gaussian_items and map_gaussian visit the nodes in the same order
    return map_gaussian(lambda node: found[next(paths)], params)


def moped(params: PyTree, weights: object, delta: float = 0.1, *, min_sigma: float = 1e-8) -> PyTree:
    """New params with ``mu = w`` and ``sigma = max(delta * |w|, min_sigma)`` at every Gaussian node.

    Deterministic leaves of ``params`` are kept. ``min_sigma`` keeps rho finite
    where a weight is exactly zero (BLiTZ adds 1e-20 inside its log instead).
    """
    delta = _checks.positive("delta", delta)
    min_sigma = _checks.positive("min_sigma", min_sigma)
    tree = weights_for(params, weights)
    return map_gaussian(lambda node, w: moped_node(w, delta, min_sigma), params, tree, otherwise=lambda leaf, _: leaf)


@dataclasses.dataclass(frozen=True, eq=False)
class CentredGaussianPrior:
    """``N(centre, sigma^2)`` for each element, with a tensor ``centre`` (MOPED's re-centred prior)."""

    centre: torch.Tensor
    sigma: float = 1.0
    has_closed_form_kl = True

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        z = (w - self.centre) / self.sigma
        return -0.5 * z * z - (math.log(self.sigma) + LOG_SQRT_2PI)

    def kl(self, mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        s = F.softplus(rho)
        shift = mu - self.centre
        return (s * s + shift * shift) / (2 * self.sigma**2) - torch.log(s) + (math.log(self.sigma) - 0.5)


def recentre_priors(model: Layer, params: PyTree, weights: object, prior_sigma: float = 1.0) -> Layer:
    """``model`` with the prior of every Gaussian node replaced by ``N(w, prior_sigma^2)``."""
    if not isinstance(model, Layer):
        raise FblitzTypeError(f"model must be a fblitz Layer, got {model!r}")
    prior_sigma = _checks.positive("prior_sigma", prior_sigma)
    tree = weights_for(params, weights)
    paths = iter(path for path, _ in gaussian_items(params))

    def centred(node, w):
        prior = CentredGaussianPrior(w.clone(), prior_sigma)
        old = get_path(model.priors, next(paths))
        # a radial layer keeps its tag, so its KL still uses the radial log q
        return radial_prior(prior) if isinstance(old, RadialPrior) else prior

    priors = map_gaussian(centred, params, tree, otherwise=lambda leaf, _: None)
    return model._replace(priors=priors, name=f"recentred({model.name})")

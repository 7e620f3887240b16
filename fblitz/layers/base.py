"""The layer contract shared by every fblitz layer.

A layer is an immutable value holding pure functions (stax-style):

* ``init(key, *, dtype=None, device=None) -> params`` -- a fresh params tree;
* ``apply(params, x, eps=None) -> y`` -- the forward pass for ONE weight draw;
  ``eps`` is the noise tree for ``params`` (see
  :func:`fblitz.random.sample_eps`) and ``None`` means "use the posterior
  means" (BLiTZ's frozen mode). Sample axes come from ``torch.func.vmap``;
* ``priors`` -- a tree with a prior at each Gaussian node of ``params`` and
  None at deterministic leaves, used by the KL term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from fblitz.tree import PyTree


class Layer(NamedTuple):
    """A functional (Bayesian) layer or model: ``init``, ``apply``, ``priors``."""

    init: Callable[..., PyTree]
    apply: Callable[[PyTree, torch.Tensor, PyTree | None], torch.Tensor]
    priors: PyTree
    name: str = "layer"

    def __repr__(self) -> str:
        return f"Layer({self.name})"


def no_params(key=None, *, dtype=None, device=None) -> dict:
    """``init`` of a parameter-free layer: the empty tree."""
    return {}

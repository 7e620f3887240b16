"""BLiTZ's ``Flipout`` and ``Radial`` layer wrappers, made correct.

Both take a compat layer class and return a subclass (the class passed in is
not modified; BLiTZ's ``Radial`` patches it in place). ``Flipout(cls)``
layers use :mod:`fblitz.estimators`' Flipout: the bias and one shared weight
perturbation are drawn per forward pass and decorrelated across the batch by
per-example random signs on inputs and outputs (BLiTZ's wrapper adds the
perturbation to a *second* full weight sample and omits the output signs of
its LSTM). ``Radial(cls)`` layers draw each weight tensor from the radial
posterior of :mod:`fblitz.radial` (BLiTZ's wrapper reads an attribute that
does not exist). The complexity cost stays ``log q(w) - log p(w)`` at the
drawn weights, with the radial density for radial layers.

Example:
    >>> import torch
    >>> from fblitz.compat.modules import BayesianLinear
    >>> FlipoutLinear = Flipout(BayesianLinear)
    >>> FlipoutLinear(3, 2, seed=0)(torch.ones(4, 3)).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

from fblitz.compat._module import GaussianModule
from fblitz.compat.modules.embedding_bayesian_layer import BayesianEmbedding
from fblitz.errors import FblitzTypeError


def _wrap(nn_module, kind: str, **settings):
    if not (isinstance(nn_module, type) and issubclass(nn_module, GaussianModule)) or issubclass(
        nn_module, BayesianEmbedding
    ):
        raise FblitzTypeError(
            f"{kind} wraps a compat Bayesian linear, convolution, LSTM or GRU class, got {nn_module!r}"
        )
    return type(f"{kind}{nn_module.__name__}", (nn_module,), {"__module__": nn_module.__module__, **settings})


def Flipout(nn_module):  # noqa: N802 (BLiTZ's name)
    """A subclass of ``nn_module`` whose forward passes use the Flipout estimator (Wen et al. 2018)."""
    return _wrap(nn_module, "Flipout", _estimator="flipout")


def Radial(nn_module):  # noqa: N802 (BLiTZ's name)
    """A subclass of ``nn_module`` whose weights follow the radial posterior (Farquhar et al. 2020)."""
    return _wrap(nn_module, "Radial", _posterior="radial")

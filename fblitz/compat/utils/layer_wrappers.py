"""BLiTZ's ``Flipout`` and ``Radial`` layer wrappers, made correct.

Each takes a compat layer class, or a compat layer (an instance), and they
nest in either order (``Radial(Flipout(BayesianLinear))``,
``Radial(Flipout(BayesianLSTM)(10, 10))``, ...):

* ``Flipout(cls)`` returns a subclass whose forward passes use
  :mod:`fblitz.estimators`' Flipout: the bias and one shared weight
  perturbation are drawn per forward pass and decorrelated across the batch
  by per-example random signs on inputs and outputs (BLiTZ's wrapper adds the
  perturbation to a *second* full weight sample and omits the output signs of
  its LSTM).
* ``Radial(cls)`` returns a subclass drawing each weight tensor from the
  radial posterior of :mod:`fblitz.radial` (BLiTZ's wrapper patches a method
  its layers never call). With Flipout too, the shared perturbation is a
  radial draw (the sign flips keep its law, see :mod:`fblitz.radial`).
* Given a layer instead of a class, either wrapper switches that layer in
  place and returns it (as BLiTZ's ``Radial`` does with an instance); its
  parameters and noise stream are kept.

The class passed in is never modified. The complexity cost stays
``log q(w) - log p(w)`` at the drawn weights, with the radial density for
radial layers.

Example:
    >>> import torch
    >>> from fblitz.compat.modules import BayesianLinear
    >>> FlipoutLinear = Flipout(BayesianLinear)
    >>> FlipoutLinear(3, 2, seed=0)(torch.ones(4, 3)).shape
    torch.Size([4, 2])
    >>> layer = Radial(FlipoutLinear(3, 2, seed=0))  # the same layer, now radial too
    >>> layer._posterior, layer._estimator
    ('radial', 'flipout')
"""

from __future__ import annotations

from fblitz.compat._module import GaussianModule
from fblitz.compat.modules.embedding_bayesian_layer import BayesianEmbedding
from fblitz.errors import FblitzTypeError


def _wrap(nn_module, kind: str, **settings):
    layer = nn_module if isinstance(nn_module, GaussianModule) else None
    cls = type(layer) if layer is not None else nn_module
    if not (isinstance(cls, type) and issubclass(cls, GaussianModule)) or issubclass(cls, BayesianEmbedding):
        raise FblitzTypeError(
            f"{kind} wraps a compat Bayesian linear, convolution, LSTM or GRU class or layer, got {nn_module!r}"
        )
    if layer is None:
        return type(f"{kind}{cls.__name__}", (cls,), {"__module__": cls.__module__, **settings})
    for name, value in settings.items():
        setattr(layer, name, value)
    recipe = layer._layer_recipe  # rebuild the fblitz layer with the new estimator / posterior
    keywords = {**recipe.keywords, "estimator": layer._estimator, "posterior": layer._posterior}
    layer._set_layer(recipe.func, *recipe.args, **keywords)
    return layer


def Flipout(nn_module):  # noqa: N802 (BLiTZ's name)
    """A subclass of ``nn_module`` using the Flipout estimator (Wen et al. 2018), or that layer switched to it."""
    return _wrap(nn_module, "Flipout", _estimator="flipout")


def Radial(nn_module):  # noqa: N802 (BLiTZ's name)
    """A subclass of ``nn_module`` with the radial posterior (Farquhar et al. 2020), or that layer switched to it."""
    return _wrap(nn_module, "Radial", _posterior="radial")

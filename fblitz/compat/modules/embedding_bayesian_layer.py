"""``BayesianEmbedding`` (BLiTZ's name and arguments) on :func:`fblitz.layers.embedding`."""

from __future__ import annotations

import torch

from fblitz import layers
from fblitz.compat._module import GaussianModule
from fblitz.compat.modules._setup import blitz_arguments, blitz_signature, takes_blitz_arguments
from fblitz.errors import FblitzValueError

# torch's options, in its order, with its defaults
_OPTIONS = (
    ("padding_idx", None),
    ("max_norm", None),
    ("norm_type", 2.0),
    ("scale_grad_by_freq", False),
    ("sparse", False),
)


class BayesianEmbedding(GaussianModule):
    """A Bayesian ``nn.Embedding`` with BLiTZ's arguments and defaults.

    As :func:`fblitz.layers.embedding`: the ``padding_idx`` row is zero in
    every draw (BLiTZ only blocks its gradient), ``max_norm`` rescales the
    looked-up rows instead of the parameters, and ``sparse=True`` is refused.
    Parameters ``weight_mu``/``weight_rho`` (num_embeddings, embedding_dim).

    Example:
        >>> import torch
        >>> BayesianEmbedding(10, 3, seed=0)(torch.tensor([[1, 2], [3, 4]])).shape
        torch.Size([2, 2, 3])
    """

    @takes_blitz_arguments(blitz_signature("num_embeddings", "embedding_dim", *_OPTIONS, sigma_2=0.002, rho_init=-6.0))
    def __init__(self, num_embeddings, embedding_dim, freeze, seed, **arguments):
        super().__init__(freeze, seed)
        options = {name: arguments.pop(name) for name, _ in _OPTIONS}
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        for name, value in options.items():
            setattr(self, name, value)
        kwargs = blitz_arguments(self, ("weight",), **arguments)
        if self._estimator != "reparameterization" or self._posterior != "gaussian":
            raise FblitzValueError("BayesianEmbedding supports neither the Flipout nor the Radial wrapper")
        self._set_layer(layers.embedding, num_embeddings, embedding_dim, *options.values(), **kwargs)
        self._register(self._layer.init(self.next_key(), dtype=torch.get_default_dtype()))

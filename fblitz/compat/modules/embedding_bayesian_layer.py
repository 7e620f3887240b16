"""``BayesianEmbedding`` (BLiTZ's name and arguments) on :func:`fblitz.layers.embedding`."""

from __future__ import annotations

import torch

from fblitz import layers
from fblitz.compat._module import GaussianModule
from fblitz.compat.modules._setup import blitz_arguments
from fblitz.errors import FblitzValueError


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

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        padding_idx=None,
        max_norm=None,
        norm_type=2.0,
        scale_grad_by_freq=False,
        sparse=False,
        prior_sigma_1=0.1,
        prior_sigma_2=0.002,
        prior_pi=1,
        posterior_mu_init=0,
        posterior_rho_init=-6.0,
        freeze=False,
        prior_dist=None,
        *,
        seed=None,
    ):
        super().__init__(freeze, seed)
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        kwargs = blitz_arguments(self, ("weight",), prior_sigma_1, prior_sigma_2, prior_pi, posterior_mu_init,
                                 posterior_rho_init, prior_dist)  # fmt: skip
        if self._estimator != "reparameterization" or self._posterior != "gaussian":
            raise FblitzValueError("BayesianEmbedding supports neither the Flipout nor the Radial wrapper")
        self._set_layer(
            layers.embedding,
            num_embeddings,
            embedding_dim,
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            **kwargs,
        )
        self._register(self._layer.init(self.next_key(), dtype=torch.get_default_dtype()))

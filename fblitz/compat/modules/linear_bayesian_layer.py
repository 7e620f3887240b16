"""``BayesianLinear`` (BLiTZ's name and arguments) on :func:`fblitz.layers.linear`."""

from __future__ import annotations

import torch

from fblitz import _checks, layers
from fblitz.compat._module import GaussianModule
from fblitz.compat.modules._setup import UNUSED_BIAS_KEYS, blitz_arguments


class BayesianLinear(GaussianModule):
    """A Bayesian ``nn.Linear``: each forward pass samples ``W, b ~ N(mu, softplus(rho)^2)``.

    Arguments and defaults are BLiTZ's; ``seed`` (keyword-only) fixes the
    layer's noise stream and initialisation (see :mod:`fblitz.compat`).
    Parameters: ``weight_mu``, ``weight_rho`` (out, in), ``bias_mu``,
    ``bias_rho`` (out,). After a sampling forward pass,
    ``log_variational_posterior`` and ``log_prior`` hold ``log q(w)`` and
    ``log p(w)`` at the drawn weights. With ``bias=False`` there are no bias
    parameters (BLiTZ keeps two unused ones; loading its state dict ignores them).

    Example:
        >>> import torch
        >>> layer = BayesianLinear(3, 2, seed=0)
        >>> layer(torch.ones(4, 3)).shape, sorted(layer.state_dict())
        (torch.Size([4, 2]), ['bias_mu', 'bias_rho', 'weight_mu', 'weight_rho'])
    """

    def __init__(
        self,
        in_features,
        out_features,
        bias=True,
        prior_sigma_1=0.1,
        prior_sigma_2=0.4,
        prior_pi=1,
        posterior_mu_init=0,
        posterior_rho_init=-7.0,
        freeze=False,
        prior_dist=None,
        *,
        seed=None,
    ):
        super().__init__(freeze, seed)
        self.in_features, self.out_features, self.bias = in_features, out_features, bias
        names = ("weight", "bias") if bias else ("weight",)
        self._ignored_keys = () if bias else UNUSED_BIAS_KEYS
        kwargs = blitz_arguments(self, names, prior_sigma_1, prior_sigma_2, prior_pi, posterior_mu_init,
                                 posterior_rho_init, prior_dist)  # fmt: skip
        self._set_layer(layers.linear, in_features, out_features, _checks.boolean("bias", bias), **kwargs)
        self._register(self._layer.init(self.next_key(), dtype=torch.get_default_dtype()))

    def _blitz_placeholders(self, like):
        if self.bias:
            return {}
        # BLiTZ's bias=False layer still holds an (unused) bias node: mean 0, rho at its initial value
        zeros = like.new_zeros(self.out_features)
        rho = torch.full_like(zeros, float(self.posterior_rho_init))
        return {"bias_mu": zeros, "bias_rho": rho, "bias_sampler.mu": zeros, "bias_sampler.rho": rho,
                "bias_sampler.eps_w": zeros.clone()}  # fmt: skip

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias}"

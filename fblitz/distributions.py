"""The mean-field Gaussian posterior: sigma = softplus(rho), densities and KL.

Everything is elementwise and differentiable, stable for rho in [-50, 50] in
float32 and float64, and follows the dtype/device of its inputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.errors import FblitzValueError

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def sigma(rho: torch.Tensor) -> torch.Tensor:
    """Posterior standard deviation ``softplus(rho) = log(1 + exp(rho))``, elementwise."""
    return F.softplus(rho)


def log_sigma(rho: torch.Tensor) -> torch.Tensor:
    """``log(softplus(rho))``.

    Finite with finite gradients while softplus(rho) is a normal float: rho
    above about -87 in float32 and -708 in float64 (sigma > 1e-38), far below
    any useful posterior scale.
    """
    return torch.log(F.softplus(rho))


def inverse_softplus(sigma_value: torch.Tensor | float) -> torch.Tensor:
    """The rho with ``softplus(rho) == sigma_value`` (requires sigma_value > 0).

    Uses ``rho = s + log(-expm1(-s))``, exact for tiny and huge s alike.

    Example:
        >>> float(sigma(inverse_softplus(torch.tensor(0.05))))  # doctest: +ELLIPSIS
        0.05...
    """
    if not isinstance(sigma_value, torch.Tensor):
        sigma_value = torch.tensor(_checks.positive("sigma", sigma_value), dtype=torch.get_default_dtype())
    elif not bool((sigma_value > 0).all()):
        raise FblitzValueError("sigma must be > 0 everywhere to invert softplus")
    return sigma_value + torch.log(-torch.expm1(-sigma_value))


def reparameterize(mu: torch.Tensor, rho: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """A weight sample ``mu + softplus(rho) * eps``."""
    return torch.addcmul(mu, F.softplus(rho), eps)


def gaussian_log_prob(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Elementwise log N(x; mean, std^2); ``std`` must be > 0."""
    z = (x - mean) / std
    return -0.5 * z * z - torch.log(torch.as_tensor(std, dtype=z.dtype, device=z.device)) - LOG_SQRT_2PI


def posterior_log_prob(eps: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """Elementwise log q(w) at ``w = mu + sigma * eps``, written through eps.

    Equal in value and total derivative to ``gaussian_log_prob(w, mu, sigma)``
    but never divides by a possibly tiny sigma.
    """
    return -0.5 * eps * eps - log_sigma(rho) - LOG_SQRT_2PI


def gaussian_kl(mu_q: torch.Tensor, rho_q: torch.Tensor, mu_p: float, sigma_p: float) -> torch.Tensor:
    """Elementwise KL( N(mu_q, softplus(rho_q)^2) || N(mu_p, sigma_p^2) ).

    ``(s^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - log(s) + log(sigma_p) - 1/2``
    with s = softplus(rho_q), written with few tensor ops (it runs every step).
    """
    s = F.softplus(rho_q)
    shift = mu_q if mu_p == 0.0 else mu_q - mu_p
    spread = torch.addcmul(s * s, shift, shift)
    return spread.mul(0.5 / (sigma_p * sigma_p)) - torch.log(s) + (math.log(sigma_p) - 0.5)

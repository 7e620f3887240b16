"""BLiTZ's ``weight_sampler`` names: a trainable Gaussian and the scale-mixture prior, on fblitz's math.

The compat layers do not use :class:`TrainableRandomDistribution` (they hold
mu and rho themselves, once); it is here for code that builds one directly.
Both classes report true log-densities: BLiTZ subtracts an extra 0.5 per
element from each (which cancels in the KL) and adds 1e-6 to the prior density.

Example:
    >>> import torch
    >>> prior = PriorWeightDistribution(pi=0.5, sigma1=1.0, sigma2=0.0025)
    >>> bool(torch.isfinite(prior.log_prior(torch.tensor([0.0, 50.0]))))
    True
    >>> dist = TrainableRandomDistribution(torch.zeros(3), torch.full((3,), -3.0), seed=0)
    >>> dist.sample().shape, dist.log_posterior().shape
    (torch.Size([3]), torch.Size([]))
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from fblitz.compat._module import KeyStream, global_seed
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.priors import Prior, blitz_default, log_prob
from fblitz.random import as_key, normal
from fblitz.variational.distributions import gaussian_log_prob, posterior_log_prob, reparameterize, sigma


class TrainableRandomDistribution(nn.Module):
    """A Gaussian ``N(mu, softplus(rho)^2)`` with trainable ``mu`` and ``rho`` (BLiTZ's sampler).

    Args:
        mu, rho: initial tensors of one shape (copied into new Parameters).
        seed: keyword-only; the key of its noise stream (None: one draw from
            the global torch RNG now, see :mod:`fblitz.compat`).

    ``sample()`` draws ``w = mu + sigma * eps`` (``eps`` is kept in the
    ``eps_w`` buffer, ``sigma`` and ``w`` as attributes);
    ``log_posterior(w=None)`` is ``sum log q(w)`` at ``w`` or at the last sample.
    """

    def __init__(self, mu: torch.Tensor, rho: torch.Tensor, *, seed=None):
        super().__init__()
        if not isinstance(mu, torch.Tensor) or not isinstance(rho, torch.Tensor) or mu.shape != rho.shape:
            raise FblitzValueError(f"mu and rho must be tensors of one shape, got {mu!r:.60} and {rho!r:.60}")
        self.mu = nn.Parameter(mu.detach().clone())
        self.rho = nn.Parameter(rho.detach().clone())
        self.register_buffer("eps_w", torch.zeros_like(self.mu))
        self.sigma = None
        self.w = None
        self._stream = KeyStream(as_key(global_seed() if seed is None else seed, "seed"))

    def sample(self) -> torch.Tensor:
        """A new weight draw of mu's shape."""
        eps = normal(self._stream.next_key(), self.mu.shape, dtype=self.mu.dtype, device=self.mu.device)
        self.eps_w.copy_(eps)
        self.sigma = sigma(self.rho)
        self.w = reparameterize(self.mu, self.rho, self.eps_w)
        return self.w

    def log_posterior(self, w: torch.Tensor | None = None) -> torch.Tensor:
        """``sum log q(w)`` (0-dim) at ``w``, or at the last sample when ``w`` is None."""
        if w is None:
            if self.w is None:
                raise FblitzValueError("log_posterior() needs a sample first: call sample() or pass w")
            return posterior_log_prob(self.eps_w, self.rho).sum()
        return gaussian_log_prob(w, self.mu, sigma(self.rho)).sum()


def prior_from_dist(dist) -> Prior:
    """An fblitz prior from a ``torch.distributions`` object (BLiTZ's ``prior_dist``).

    Argument validation is switched off on a copy of ``dist``: it branches on
    tensor values, which ``torch.func.vmap`` cannot do.
    """
    if not hasattr(dist, "log_prob"):
        raise FblitzTypeError(f"prior_dist must be a torch.distributions object with log_prob, got {dist!r}")
    quiet = copy.copy(dist)
    quiet._validate_args = False
    return log_prob(DistLogProb(quiet))


class DistLogProb:
    """``w -> dist.log_prob(w)`` broadcast to ``w``'s shape (a class, so models holding it pickle)."""

    def __init__(self, dist):
        self.dist = dist

    def __call__(self, w: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(w).expand(w.shape)


class PriorWeightDistribution(nn.Module):
    """BLiTZ's prior: ``pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2)``, or ``dist`` when given.

    ``prior`` is the fblitz prior (:func:`fblitz.priors.scale_mixture`, a
    log-sum-exp, so finite for any weight); ``log_prior(w)`` is its log-density
    summed over ``w`` (0-dim).
    """

    def __init__(self, pi=1, sigma1=0.1, sigma2=0.001, dist=None):
        super().__init__()
        if dist is None:
            self.pi, self.sigma1, self.sigma2 = pi, sigma1, sigma2
            self.prior = blitz_default(sigma1, sigma2, pi)
        else:
            self.pi = 1
            self.prior = prior_from_dist(dist)
        self.dist = dist

    def log_prior(self, w: torch.Tensor) -> torch.Tensor:
        """``sum log p(w)`` (0-dim)."""
        return self.prior.log_prob(w).sum()

"""The mean-field Gaussian posterior over a params tree: init, samples, means.

A Gaussian node ``{"mu": Tensor, "rho": Tensor}`` stands for
q(w) = N(mu, softplus(rho)^2) elementwise. Deterministic leaves (plain tensors)
pass through every function here unchanged.

Example:
    >>> import torch
    >>> node = gaussian_init(0.0, 0.1, -7.0, 0.1).node(0, (2, 3))
    >>> tuple(node["mu"].shape), sorted(node)
    ((2, 3), ['mu', 'rho'])
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz.distributions import inverse_softplus, reparameterize, sigma
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.random import KeyLike, as_key, normal
from fblitz.tree import PyTree, map_gaussian


class GaussianInit(NamedTuple):
    """How to initialise a Gaussian node: mu ~ N(mu_init, mu_std^2), rho ~ N(rho_init, rho_std^2).

    Build it with :func:`gaussian_init`, which validates the numbers.
    """

    mu_init: float
    mu_std: float
    rho_init: float
    rho_std: float

    def node(self, key: KeyLike, shape: tuple[int, ...], *, dtype=None, device=None) -> dict:
        """A new ``{"mu", "rho"}`` node of ``shape``."""
        k_mu, k_rho = as_key(key).split()
        dtype = torch.get_default_dtype() if dtype is None else dtype
        mu, rho = normal(k_mu, shape, dtype=dtype, device=device), normal(k_rho, shape, dtype=dtype, device=device)
        if mu.is_meta:  # shapes only: no arithmetic (meta arithmetic runs Python kernels that import torch._dynamo)
            return {"mu": mu, "rho": rho}
        return {"mu": self.mu_init + self.mu_std * mu, "rho": self.rho_init + self.rho_std * rho}


def gaussian_init(mu_init: float, mu_std: float, rho_init: float, rho_std: float) -> GaussianInit:
    """A validated :class:`GaussianInit` (names follow BLiTZ's ``posterior_*`` arguments)."""
    return GaussianInit(
        _checks.real_number("posterior_mu_init", mu_init),
        _checks.non_negative("posterior_mu_std", mu_std),
        _checks.real_number("posterior_rho_init", rho_init),
        _checks.non_negative("posterior_rho_std", rho_std),
    )


def from_mean_std(mean: torch.Tensor, std: torch.Tensor | float) -> dict:
    """A Gaussian node with the given mean and (positive) standard deviation."""
    _checks.tensor("mean", mean, floating=True)
    std = torch.as_tensor(std, dtype=mean.dtype, device=mean.device)
    if std.shape != mean.shape:
        std = std.expand(mean.shape) if std.dim() == 0 else std
        _checks.same_shape("std", std, mean.shape, "mean")
    return {"mu": mean.clone(), "rho": inverse_softplus(std).clone()}


def sample(node: dict, noise: torch.Tensor | None) -> torch.Tensor:
    """One weight tensor from one Gaussian node: ``mu + softplus(rho) * noise``, or ``mu`` for None.

    The per-tensor form of :func:`sample_weights` that layers call on their
    own nodes (cheap: no tree traversal in the hot path).
    """
    if noise is None:
        return node["mu"]
    return reparameterize(node["mu"], node["rho"], check_noise("eps", noise, node["mu"]))


def check_noise(name: str, noise: object, mu: torch.Tensor) -> torch.Tensor:
    """``noise`` if it is a tensor with ``mu``'s shape, dtype and device (nothing is promoted or moved).

    A float64 draw for float32 params would otherwise promote the weights to
    float64 and fail later, far from the cause, or silently change the
    output's dtype.
    """
    if not isinstance(noise, torch.Tensor):
        raise FblitzTypeError(f"{name} must be a tensor of mu's shape {tuple(mu.shape)}, got {noise!r}")
    if noise.dtype != mu.dtype or noise.device != mu.device:
        raise FblitzTypeError(
            f"{name} must have the params' dtype {mu.dtype} on {mu.device}, got {noise.dtype} on {noise.device} "
            "(draw it with sample_noise(model, key, params, ...), which follows the params)"
        )
    if noise.shape != mu.shape:
        raise FblitzValueError(f"{name} must match mu's shape {tuple(mu.shape)}, got {tuple(noise.shape)}")
    return noise


def sample_weights(params: PyTree, eps: PyTree | None) -> PyTree:
    """Weights ``mu + softplus(rho) * eps`` at Gaussian nodes, or the means when ``eps`` is None.

    Deterministic leaves are returned as they are. ``eps`` must follow
    :func:`fblitz.random.sample_eps`'s layout without a sample axis (inside
    ``vmap``, the sample axis is already mapped away).
    """
    if eps is None:
        return mean_weights(params)

    def draw(node, noise):
        return reparameterize(node["mu"], node["rho"], check_noise("eps at each Gaussian node", noise, node["mu"]))

    try:
        return map_gaussian(draw, params, eps, otherwise=lambda leaf, _: leaf)
    except (ValueError, TypeError) as error:
        if isinstance(error, (FblitzValueError, FblitzTypeError)):
            raise
        raise FblitzValueError(f"eps must follow the structure of params: {error}") from None


def mean_weights(params: PyTree) -> PyTree:
    """The posterior means (BLiTZ's "frozen" weights), deterministic leaves unchanged."""
    return map_gaussian(lambda node: node["mu"], params, otherwise=lambda leaf: leaf)


def stddevs(params: PyTree) -> PyTree:
    """``softplus(rho)`` at every Gaussian node (``()`` at deterministic leaves)."""
    return map_gaussian(lambda node: sigma(node["rho"]), params)

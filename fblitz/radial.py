"""The radial posterior (Farquhar, Osborne & Gal 2020): noise, log-density, KL tag.

A layer built with ``posterior="radial"`` samples each weight tensor of D
entries as

    w = mu + sigma * eps_r,    eps_r = r * eps / ||eps||,
    eps ~ N(0, I_D),  r ~ N(0, 1)  (one scalar per tensor and sample),

so the direction of ``eps_r`` is uniform on the unit sphere and its length is
``|r|``, half-normal. Unlike the Gaussian ``eps``, whose length concentrates
near sqrt(D), the radial draw stays within a few units of the mean in every
dimension, which avoids the "soap bubble" of high-dimensional Gaussians.

**Encoding.** The normalisation happens when the noise is drawn
(:func:`radial_noise`), so the noise tree has the usual layout
``{"weight": eps_r, "bias": eps_r}`` and ``apply`` is the plain
reparameterization ``mu + sigma * eps_r``. Only the KL must know the
posterior: the layer's priors tree holds :class:`RadialPrior` tags (the prior,
marked radial), which :mod:`fblitz.kl` reads to use :func:`radial_log_prob`.

**Flipout.** A radial layer may also use Flipout (``estimator="flipout"``;
noise ``{"weight": eps_r, "bias": eps_r, "seed": int64}``): Flipout needs a
perturbation whose distribution does not change when the signs of its
entries are flipped, and flipping signs is an orthogonal map, under which the
uniform direction ``eps / ||eps||`` (and so ``eps_r``) keeps its distribution.
Each example's output then has exactly the distribution of plain radial
sampling (tested). Local reparameterization does not apply: it assumes
Gaussian pre-activations.

**Density.** In R^D, with rho = ||eps_r|| and A_{D-1} = 2 pi^(D/2) / Gamma(D/2)
the area of the unit sphere,

    p(eps_r) = 2 N(rho; 0, 1) / (A_{D-1} rho^(D-1)),

(the half-normal density of the length spread over the sphere of radius
rho), and ``log q(w) = log p(eps_r) - sum(log sigma)``. For D = 1 this is the
Gaussian. There is no closed-form KL to the priors here: it is always the
Monte Carlo ``log q(w) - log p(w)``.

References:
    Farquhar, Osborne & Gal (2020), Radial Bayesian Neural Networks: Beyond
    Discrete Support in Large-Scale Bayesian Deep Learning, AISTATS.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from fblitz import _checks
from fblitz.distributions import LOG_SQRT_2PI, log_sigma
from fblitz.errors import FblitzValueError
from fblitz.priors import Prior, check_prior
from fblitz.random import KeyLike, as_key, normal, sample_eps
from fblitz.tree import PyTree, tree_flatten, tree_unflatten

POSTERIORS = ("gaussian", "radial")


RADIAL_ESTIMATORS = ("reparameterization", "flipout")


def check_posterior(name: str, value: object, estimator: str = "reparameterization") -> str:
    """``value`` if it is one of :data:`POSTERIORS` (radial with :data:`RADIAL_ESTIMATORS` only)."""
    value = _checks.one_of(name, value, POSTERIORS)
    if value == "radial" and estimator not in RADIAL_ESTIMATORS:
        raise FblitzValueError(
            f"{name}='radial' needs estimator='reparameterization' or 'flipout' (local reparameterization "
            f"assumes Gaussian pre-activations), got {estimator!r}"
        )
    return value


def radial_noise(key: KeyLike, params: PyTree, n_samples: int | None = None) -> PyTree:
    """Radial noise ``r * eps / ||eps||`` at every Gaussian node of ``params``.

    The norm is over each whole tensor (one direction and one radius per
    tensor and sample). The layout is :func:`fblitz.random.sample_eps`'s: a
    tensor of mu's shape at each Gaussian node, with a leading sample axis S
    when ``n_samples=S``, and ``()`` at deterministic leaves.

    Example:
        >>> params = {"weight": {"mu": torch.zeros(3, 4), "rho": torch.zeros(3, 4)}}
        >>> eps = radial_noise(0, params, 5)["weight"]
        >>> eps.shape, bool(eps.flatten(1).norm(dim=1).lt(10).all())
        (torch.Size([5, 3, 4]), True)
    """
    direction_key, radius_key = as_key(key).split(2)
    leaves, structure = tree_flatten(sample_eps(direction_key, params, n_samples))
    lead = 0 if n_samples is None else 1
    radii = normal(radius_key, (len(leaves), *leaves[0].shape[:lead]), dtype=torch.float64)
    out = []
    for eps, r in zip(leaves, radii):
        dims = tuple(range(lead, eps.dim()))
        norm = torch.linalg.vector_norm(eps, dim=dims, keepdim=True)
        out.append(eps / norm * r.to(eps).view(*r.shape, *([1] * len(dims))))
    return tree_unflatten(structure, out)


def log_sphere_area(dims: int) -> float:
    """``log A_{D-1}``, the log surface area of the unit sphere in R^D (``dims`` = D >= 1).

    Example:
        >>> round(math.exp(log_sphere_area(3)), 6) == round(4 * math.pi, 6)
        True
    """
    dims = _checks.integer("dims", dims, minimum=1)
    return math.log(2.0) + 0.5 * dims * math.log(math.pi) - math.lgamma(0.5 * dims)


def noise_log_prob(eps: torch.Tensor) -> torch.Tensor:
    """Log-density of one radial draw ``eps`` of any shape, as a point of R^D (0-dim).

    ``log 2 + log N(rho; 0, 1) - (D - 1) log rho - log A_{D-1}`` with
    ``rho = ||eps||`` and D = ``eps.numel()``. The constant is computed in
    float64 by Python, so it stays exact for large D.

    Example:
        >>> x = torch.tensor([0.3], dtype=torch.float64)  # D = 1: the standard normal
        >>> bool(torch.isclose(noise_log_prob(x), torch.distributions.Normal(0.0, 1.0).log_prob(x).sum()))
        True
    """
    dims = eps.numel()
    if dims == 0:
        raise FblitzValueError("eps must have at least one entry for a radial log-density, got an empty tensor")
    rho = torch.linalg.vector_norm(eps)
    constant = math.log(2.0) - LOG_SQRT_2PI - log_sphere_area(dims)
    out = constant - 0.5 * rho * rho
    return out - (dims - 1) * torch.log(rho) if dims > 1 else out  # D = 1: no 0 * log 0 at eps = 0


def radial_log_prob(eps: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """``log q(w)`` of the radial posterior at ``w = mu + softplus(rho) * eps`` (0-dim).

    ``eps`` is one radial draw of the tensor (no sample axis; use ``vmap``).
    The affine map contributes ``-sum(log sigma)``; written through ``eps``,
    nothing divides by a small sigma.

    Example:
        >>> eps = radial_noise(0, {"w": {"mu": torch.zeros(6), "rho": torch.zeros(6)}})["w"]
        >>> radial_log_prob(eps, torch.zeros(6)).shape
        torch.Size([])
    """
    return noise_log_prob(eps) - log_sigma(rho).sum()


@dataclasses.dataclass(frozen=True)
class RadialPrior:
    """The prior ``base`` of a tensor whose posterior is radial (a tag for the KL).

    It has ``base``'s log-density, no closed-form KL, and tells
    :mod:`fblitz.kl` (through ``posterior`` and ``posterior_log_prob``) to
    use the radial log q in the Monte Carlo estimate.
    """

    base: Prior
    posterior = "radial"
    has_closed_form_kl = False

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        return self.base.log_prob(w)

    def kl(self, mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        raise FblitzValueError(f"a radial posterior has no closed-form KL to {self.base!r}; use kl_mode='auto'")

    @staticmethod
    def posterior_log_prob(eps: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """The whole tensor's ``log q(w)`` (0-dim), see :func:`radial_log_prob`."""
        return radial_log_prob(eps, rho)


def radial_prior(prior: Prior) -> RadialPrior:
    """Tag ``prior`` as the prior of a radially distributed tensor (see :class:`RadialPrior`)."""
    return RadialPrior(check_prior("prior", prior))

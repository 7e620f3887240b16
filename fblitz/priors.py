"""Weight priors: Gaussian, BLiTZ's scale mixture, and user-defined densities.

A prior is a small immutable object with

* ``log_prob(w)`` -- elementwise log-density, same shape as ``w``;
* ``has_closed_form_kl`` and ``kl(mu, rho)`` -- elementwise
  KL( N(mu, softplus(rho)^2) || prior ) where a closed form exists.

Priors hold Python floats, so they follow the dtype/device of the weights.

Example:
    >>> import torch
    >>> prior = scale_mixture(pi=0.5, sigma1=1.0, sigma2=0.0025)
    >>> bool(torch.isfinite(prior.log_prob(torch.tensor([0.0, 100.0]))).all())
    True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch

from fblitz import _checks
from fblitz.distributions import LOG_SQRT_2PI, gaussian_kl
from fblitz.errors import FblitzTypeError, FblitzValueError


@runtime_checkable
class Prior(Protocol):
    """What the KL code needs from a prior."""

    has_closed_form_kl: bool

    def log_prob(self, w: torch.Tensor) -> torch.Tensor: ...

    def kl(self, mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor: ...


def _no_closed_form(prior: object) -> FblitzValueError:
    return FblitzValueError(f"{prior!r} has no closed-form KL to a Gaussian posterior; use kl_mode='monte_carlo'")


@dataclasses.dataclass(frozen=True)
class GaussianPrior:
    """N(mean, sigma^2) on every weight."""

    sigma: float = 1.0
    mean: float = 0.0
    has_closed_form_kl = True

    def __post_init__(self):
        object.__setattr__(self, "sigma", _checks.positive("sigma", self.sigma))
        object.__setattr__(self, "mean", _checks.real_number("mean", self.mean))

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        z = (_checks.float_input("w", w) - self.mean) / self.sigma
        return _checks.finite_result("the prior log_prob", -0.5 * z * z - (math.log(self.sigma) + LOG_SQRT_2PI))

    def kl(self, mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        return gaussian_kl(mu, rho, self.mean, self.sigma)


@dataclasses.dataclass(frozen=True)
class ScaleMixturePrior:
    """pi * N(0, sigma1^2) + (1 - pi) * N(0, sigma2^2), as in Blundell et al. (2015).

    The log-density is a log-sum-exp of the two log-densities, so it stays
    finite for any |w| and tiny sigmas (BLiTZ adds 1e-6 to the density
    instead, which biases the prior and still loses precision). With pi equal
    to 1 or 0 the mixture is a single Gaussian and has a closed-form KL.
    """

    pi: float = 0.5
    sigma1: float = 1.0
    sigma2: float = 0.0025

    def __post_init__(self):
        object.__setattr__(self, "pi", _checks.probability("pi", self.pi))
        object.__setattr__(self, "sigma1", _checks.positive("sigma1", self.sigma1))
        object.__setattr__(self, "sigma2", _checks.positive("sigma2", self.sigma2))
        single = {1.0: GaussianPrior(self.sigma1), 0.0: GaussianPrior(self.sigma2)}.get(self.pi)
        object.__setattr__(self, "_single", single)
        object.__setattr__(
            self,
            "_components",
            (
                (GaussianPrior(self.sigma1), math.log(self.pi)),
                (GaussianPrior(self.sigma2), math.log1p(-self.pi)),
            )
            if single is None
            else (),
        )

    @property
    def has_closed_form_kl(self) -> bool:
        return self._single is not None

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        single = self._single
        if single is not None:
            return single.log_prob(w)
        (first, log_pi1), (second, log_pi2) = self._components
        return _checks.finite_result(
            "the prior log_prob", torch.logaddexp(first.log_prob(w) + log_pi1, second.log_prob(w) + log_pi2)
        )

    def kl(self, mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        single = self._single
        if single is None:
            raise _no_closed_form(self)
        return single.kl(mu, rho)


@dataclasses.dataclass(frozen=True)
class LogProbPrior:
    """A prior given by any elementwise log-density callable ``fn(w) -> Tensor``.

    ``fn`` must return a tensor of ``w``'s shape. An optional ``kl_fn(mu, rho)``
    supplies a closed-form elementwise KL.
    """

    fn: Callable[[torch.Tensor], torch.Tensor]
    kl_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self):
        if not callable(self.fn):
            raise FblitzTypeError(f"fn must be callable (w -> log-density), got {self.fn!r}")
        if self.kl_fn is not None and not callable(self.kl_fn):
            raise FblitzTypeError(f"kl_fn must be callable (mu, rho -> KL) or None, got {self.kl_fn!r}")

    @property
    def has_closed_form_kl(self) -> bool:
        return self.kl_fn is not None

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        out = self.fn(w)
        if not isinstance(out, torch.Tensor) or out.shape != w.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise FblitzValueError(
                f"prior fn must return an elementwise log-density of shape {tuple(w.shape)}, got {shape}"
            )
        return out

    def kl(self, mu: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        if self.kl_fn is None:
            raise _no_closed_form(self)
        return self.kl_fn(mu, rho)


def gaussian(sigma: float = 1.0, mean: float = 0.0) -> GaussianPrior:
    """A N(mean, sigma^2) prior."""
    return GaussianPrior(sigma, mean)


def scale_mixture(pi: float = 0.5, sigma1: float = 1.0, sigma2: float = 0.0025) -> ScaleMixturePrior:
    """Blundell et al.'s two-component scale-mixture prior."""
    return ScaleMixturePrior(pi, sigma1, sigma2)


def log_prob(fn: Callable, kl_fn: Callable | None = None) -> LogProbPrior:
    """A prior from an elementwise log-density (and optionally a closed-form KL)."""
    return LogProbPrior(fn, kl_fn)


def blitz_default(prior_sigma_1: float = 0.1, prior_sigma_2: float = 0.4, prior_pi: float = 1.0) -> Prior:
    """The prior a BLiTZ layer builds from its ``prior_*`` arguments.

    BLiTZ's defaults (pi=1) make it a single N(0, 0.1^2), which has a closed-form KL.
    Errors name BLiTZ's arguments (``prior_pi``, ``prior_sigma_1``, ``prior_sigma_2``).
    """
    return ScaleMixturePrior(
        _checks.probability("prior_pi", prior_pi),
        _checks.positive("prior_sigma_1", prior_sigma_1),
        _checks.positive("prior_sigma_2", prior_sigma_2),
    )


def check_prior(name: str, prior: object) -> Prior:
    """Raise unless ``prior`` implements the :class:`Prior` protocol."""
    if not isinstance(prior, Prior):
        raise FblitzTypeError(
            f"{name} must be a prior with log_prob, kl and has_closed_form_kl "
            f"(e.g. fblitz.priors.gaussian(0.1)), got {prior!r}"
        )
    return prior

"""The predictive of Student-t weight draws: mixture log-likelihood and seeded samples.

With S weight draws each predicting a location-scale Student-t for every
target, the predictive is the equally weighted mixture of the S components.
:func:`student_t_mixture_log_likelihood` is its average log density (the
Student-t counterpart of :func:`~fblitz.metrics.gaussian_mixture_log_likelihood`);
:func:`student_t_mixture_samples` draws from it with an explicit key, for
quantile intervals and coverage (torch 2.13 has no Student-t CDF).

Example:
    >>> import torch
    >>> locs, scales, dfs = torch.zeros(2, 1), torch.ones(2, 1), torch.ones(2, 1)
    >>> round(student_t_mixture_log_likelihood(locs, scales, dfs, torch.zeros(1)), 4)  # Cauchy: -log(pi)
    -1.1447
"""

from __future__ import annotations

import math

import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.random import KeyLike, as_key, generator
from fblitz.variational.distributions import student_t_log_prob


def _components(locs: torch.Tensor, scales: torch.Tensor, dfs: torch.Tensor) -> None:
    _checks.float_input("locs", locs)
    if locs.dim() == 0 or locs.shape[0] < 1:
        raise FblitzValueError(f"locs must have a leading sample axis of at least 1, got shape {tuple(locs.shape)}")
    for name, value in (("scales", scales), ("dfs", dfs)):
        _checks.float_input(name, value)
        _checks.same_shape(name, value, locs.shape, "locs")
        if not bool((value > 0).all()):
            raise FblitzValueError(f"{name} must be > 0 everywhere for a Student-t mixture")


def student_t_mixture_log_likelihood(
    locs: torch.Tensor, scales: torch.Tensor, dfs: torch.Tensor, targets: torch.Tensor
) -> float:
    """Average log-density of ``targets`` under an equally weighted Student-t mixture.

    ``log (1/S) sum_s t(y; dfs[s], locs[s], scales[s])`` by log-sum-exp, averaged
    over every element of ``targets``: the test log-likelihood of a network
    trained with :func:`fblitz.likelihoods.student_t`, higher is better.

    Args:
        locs: (S, ...) the location of each component.
        scales: (S, ...) their scales, > 0.
        dfs: (S, ...) their degrees of freedom, > 0.
        targets: (...) the observations.

    Returns:
        The mean log-likelihood per element, a float.
    """
    _components(locs, scales, dfs)
    _checks.float_input("targets", targets)
    _checks.same_shape("targets", targets, locs.shape[1:], "locs without its sample axis")
    log_densities = student_t_log_prob(targets.expand_as(locs), locs, scales, dfs)
    per_element = torch.logsumexp(log_densities, dim=0) - math.log(locs.shape[0])
    return float(_checks.finite_result("the Student-t mixture log-likelihood", per_element.mean()))


def student_t_mixture_samples(
    key: KeyLike, locs: torch.Tensor, scales: torch.Tensor, dfs: torch.Tensor, draws_per_component: int
) -> torch.Tensor:
    """Draws from the equally weighted Student-t mixture, reproducible from ``key``.

    Each component s gives ``draws_per_component`` values
    ``locs[s] + scales[s] * z / sqrt(g / nu)`` with z ~ N(0, 1), g ~ Gamma(nu/2, 1) * 2
    and nu = dfs[s] (so ``z / sqrt(g / nu)`` is standard Student-t). The global
    torch RNG is not used.

    Args:
        key: random key or int seed.
        locs, scales, dfs: (S, ...) the components, as in :func:`student_t_mixture_log_likelihood`.
        draws_per_component: M >= 1.

    Returns:
        (M * S, ...) samples, each component equally represented.

    Example:
        >>> import torch
        >>> draws = student_t_mixture_samples(0, torch.zeros(2, 3), torch.ones(2, 3), torch.full((2, 3), 4.0), 5)
        >>> draws.shape
        torch.Size([10, 3])
    """
    _components(locs, scales, dfs)
    count = _checks.integer("draws_per_component", draws_per_component, minimum=1)
    k_normal, k_gamma = as_key(key).split(2)
    shape = (count, *locs.shape)
    z = torch.randn(shape, generator=generator(k_normal, locs.device), dtype=locs.dtype, device=locs.device)
    half_df = (0.5 * dfs).expand(shape).contiguous()
    chi2 = 2.0 * torch._standard_gamma(half_df, generator=generator(k_gamma, locs.device))
    standard_t = z / torch.sqrt(chi2 / dfs)
    return (locs + scales * standard_t).reshape(count * locs.shape[0], *locs.shape[1:])

"""KL divergence between the mean-field posterior and the prior.

Three modes, per call:

* ``"closed_form"`` -- analytic KL(q || p) for every Bayesian tensor; an error
  names the first tensor whose prior has none (e.g. a proper scale mixture).
* ``"monte_carlo"`` -- ``log q(w) - log p(w)`` at the sampled weights
  ``w = mu + sigma * eps`` (BLiTZ's complexity cost); needs the noise.
* ``"auto"`` (default) -- closed form where the prior has one, Monte Carlo
  for the others.

A node whose prior entry names a non-Gaussian ``posterior`` (the
:class:`fblitz.radial.RadialPrior` tag of ``posterior="radial"`` layers) has
no closed form: ``"auto"`` uses Monte Carlo with the entry's
``posterior_log_prob`` (the whole tensor's log q) and ``"closed_form"`` raises.

Both estimates are unbiased for the same KL; closed form has no variance.

Which tensor uses which estimate depends only on the tree structure, the
priors and the mode, so it is resolved once into a :class:`KLPlan`; evaluating
a plan is plain dict indexing and tensor math (cheap, and traceable by
``torch.compile``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz.distributions import posterior_log_prob, reparameterize
from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteError
from fblitz.tree import PyTree, find_path, gaussian_items, get_path, path_name, tree_leaves

KL_MODES = ("auto", "closed_form", "monte_carlo")


class KLPlan(NamedTuple):
    """The Gaussian nodes of a params tree split by estimator.

    Attributes:
        closed_form: ``(path, prior)`` pairs whose KL is computed analytically.
        monte_carlo: ``(path, prior)`` pairs estimated from sampled weights.
        mode: the mode the plan was made for.
    """

    closed_form: tuple
    monte_carlo: tuple
    mode: str

    @property
    def needs_noise(self) -> bool:
        """True when some tensor uses the Monte Carlo estimate."""
        return bool(self.monte_carlo)


def _uses_closed_form(path: str, prior, mode: str) -> bool:
    closed = getattr(prior, "has_closed_form_kl", None)
    if closed is None or not hasattr(prior, "log_prob"):
        raise FblitzTypeError(
            f"the prior of '{path}' must be a fblitz prior (log_prob, kl, has_closed_form_kl), got {prior!r}"
        )
    if mode == "monte_carlo":
        return False
    family = getattr(prior, "posterior", "gaussian")
    if family != "gaussian" and mode == "closed_form":
        raise FblitzValueError(
            f"kl_mode='closed_form' is impossible for '{path}': its posterior is {family}, which has no "
            "closed-form KL; use kl_mode='auto' or 'monte_carlo'"
        )
    if closed and family == "gaussian":
        return True
    if mode == "closed_form":
        raise FblitzValueError(
            f"kl_mode='closed_form' is impossible for '{path}': its prior {prior!r} has no "
            "closed-form KL to a Gaussian; use kl_mode='monte_carlo' or 'auto'"
        )
    return False


def make_plan(params: PyTree, priors: PyTree, mode: str = "auto") -> KLPlan:
    """Resolve, for each Gaussian node of ``params``, which KL estimate ``mode`` uses."""
    _checks.one_of("kl_mode", mode, KL_MODES)
    closed, monte_carlo = [], []
    for path, _, prior in gaussian_items(params, priors, names=("priors",)):
        closed_form = _uses_closed_form(path_name(path), prior, mode)
        (closed if closed_form else monte_carlo).append((path, prior))
    return KLPlan(tuple(closed), tuple(monte_carlo), mode)


def _sum(terms: list[torch.Tensor], params: PyTree) -> torch.Tensor:
    if len(terms) > 1:
        return torch.stack(terms).sum()
    if terms:
        return terms[0]
    leaves = tree_leaves(params)
    like = leaves[0] if leaves else torch.zeros(())
    return torch.zeros((), dtype=like.dtype, device=like.device)


def closed_form_kl(plan: KLPlan, params: PyTree) -> torch.Tensor:
    """Analytic KL summed over the plan's closed-form tensors (0-dim)."""
    terms = []
    for keys, prior in plan.closed_form:
        node = get_path(params, keys)
        try:
            terms.append(prior.kl(node["mu"], node["rho"]).sum())
        except NonFiniteError as error:  # raised eagerly only; name the tensor it came from
            raise NonFiniteError(f"params at '{path_name(keys)}': {error}") from None
    return _sum(terms, params)


def monte_carlo_kl(plan: KLPlan, params: PyTree, eps: PyTree) -> torch.Tensor:
    """Single-draw ``log q(w) - log p(w)`` summed over the plan's Monte Carlo tensors.

    ``eps`` holds one draw per Gaussian node (no sample axis); use ``vmap``
    for several.
    """
    terms = []
    for keys, prior in plan.monte_carlo:
        node, noise = get_path(params, keys), find_path(eps, keys)
        if noise is None:
            raise FblitzValueError(
                f"kl_mode='monte_carlo' needs a weight sample at '{path_name(keys)}', but eps has no weight "
                "noise there (local reparameterization and similar estimators draw none); use "
                "kl_mode='closed_form' with a Gaussian prior"
            )
        if not isinstance(noise, torch.Tensor) or noise.shape != node["mu"].shape:
            got = tuple(noise.shape) if isinstance(noise, torch.Tensor) else repr(noise)
            raise FblitzValueError(
                f"eps at '{path_name(keys)}' must be a tensor of mu's shape "
                f"{tuple(node['mu'].shape)} for a Monte Carlo KL, got {got}"
            )
        w = reparameterize(node["mu"], node["rho"], noise)
        log_q = getattr(prior, "posterior_log_prob", None)  # a non-Gaussian posterior's whole-tensor log q
        try:
            if log_q is None:
                terms.append((posterior_log_prob(noise, node["rho"]) - prior.log_prob(w)).sum())
            else:
                terms.append(log_q(noise, node["rho"]) - prior.log_prob(w).sum())
        except NonFiniteError as error:  # raised eagerly only; name the tensor it came from
            raise NonFiniteError(f"params at '{path_name(keys)}': {error}") from None
    return _sum(terms, params)


def kl_divergence(params: PyTree, priors: PyTree, eps: PyTree | None = None, *, mode: str = "auto") -> torch.Tensor:
    """KL(q || p) summed over every Bayesian tensor, as a 0-dim tensor.

    Args:
        params: variational parameters (Gaussian ``{"mu", "rho"}`` nodes).
        priors: a tree with a prior at each Gaussian node and None at
            deterministic leaves (``model.priors``).
        eps: one noise draw per Gaussian node (no sample axis), required when
            any tensor uses the Monte Carlo estimate.
        mode: ``"auto"``, ``"closed_form"`` or ``"monte_carlo"``.

    Example:
        >>> import torch
        >>> from fblitz import priors as P
        >>> params = {"w": {"mu": torch.zeros(3), "rho": torch.zeros(3)}}
        >>> float(kl_divergence(params, {"w": P.gaussian(1.0)})) > 0
        True
    """
    plan = make_plan(params, priors, mode)
    closed = closed_form_kl(plan, params)
    if not plan.needs_noise:
        return closed
    if eps is None:
        raise FblitzValueError(f"eps is required: kl_mode={mode!r} uses a Monte Carlo estimate for at least one tensor")
    return closed + monte_carlo_kl(plan, params, eps)

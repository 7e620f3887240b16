"""What the Bayesian layers share (internal): BLiTZ's arguments and the init/apply plumbing.

Every weight layer is built the same way: validate BLiTZ's prior/posterior
arguments with :func:`bayes_from`, describe the Gaussian tensors by shape,
and hand a deterministic op ``op(x, weight, bias)`` to :func:`gaussian_layer`,
which supplies ``init`` (one key per tensor) and ``apply`` (sample each
tensor, or take its mean, then run the op). Keeping the op separate from the
sampling lets other estimators (local reparameterization, Flipout) reuse it.

Example:
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from fblitz.posterior import gaussian_init
    >>> from fblitz.priors import gaussian
    >>> args = BayesArgs(gaussian(0.1), gaussian_init(0.0, 0.1, -7.0, 0.1), freeze=False)
    >>> layer = gaussian_layer("demo", {"weight": (2, 3)}, args, lambda x, weight: F.linear(x, weight))
    >>> layer.apply(layer.init(0), torch.ones(4, 3)).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from fblitz import _checks, seeded
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.estimators import check_estimator, flipout, kind_of, local_reparameterization
from fblitz.layers.base import Layer
from fblitz.moments import linear_moments
from fblitz.posterior import GaussianInit, check_noise, gaussian_init, sample
from fblitz.priors import Prior, blitz_default, check_prior
from fblitz.radial import RADIAL_ESTIMATORS, check_posterior, radial_noise, radial_prior
from fblitz.random import as_key, sample_eps


class BayesArgs(NamedTuple):
    """The validated BLiTZ arguments of a layer: its prior, posterior init and ``freeze``.

    ``family`` is the posterior family, ``"gaussian"`` or ``"radial"`` (see :mod:`fblitz.radial`).
    """

    prior: Prior
    posterior: GaussianInit
    freeze: bool
    estimator: str = "reparameterization"
    family: str = "gaussian"


def bayes_from(arguments: dict) -> BayesArgs:
    """Validate BLiTZ's arguments, read by name from a constructor's ``locals()``.

    The names are ``prior_sigma_1``, ``prior_sigma_2``, ``prior_pi``,
    ``posterior_mu_init``, ``posterior_rho_init``, ``posterior_mu_std``,
    ``posterior_rho_std``, ``freeze``, ``prior`` (which wins over ``prior_*``)
    and, where the layer offers a choice, ``estimator`` and ``posterior``.
    """
    freeze, prior = _checks.boolean("freeze", arguments["freeze"]), arguments["prior"]
    if "bias" in arguments:
        _checks.boolean("bias", arguments["bias"])
    if prior is None:
        prior = blitz_default(arguments["prior_sigma_1"], arguments["prior_sigma_2"], arguments["prior_pi"])
    posterior = gaussian_init(
        *(arguments[f"posterior_{part}"] for part in ("mu_init", "mu_std", "rho_init", "rho_std"))
    )
    estimator = check_estimator("estimator", arguments.get("estimator", "reparameterization"))
    family = check_posterior("posterior", arguments.get("posterior", "gaussian"), estimator)
    return BayesArgs(check_prior("prior", prior), posterior, freeze, estimator, family)


def ntuple(name: str, value: object, n: int, *, minimum: int) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints (each >= ``minimum``) as an ``n``-tuple.

    Example:
        >>> ntuple("stride", 2, 3, minimum=1), ntuple("kernel_size", (1, 3), 2, minimum=1)
        ((2, 2, 2), (1, 3))
    """
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise FblitzValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
        return tuple(_checks.integer(name, v, minimum=minimum) for v in value)
    try:
        return (_checks.integer(name, value, minimum=minimum),) * n
    except FblitzTypeError:
        raise FblitzTypeError(f"{name} must be an int or a sequence of {n} ints, got {value!r}") from None


def gaussian_layer(
    name: str,
    shapes: dict[str, tuple[int, ...]],
    args: BayesArgs,
    op: Callable[..., torch.Tensor],
    check: Callable[[torch.Tensor], None] | None = None,
    *,
    estimators: tuple[str, ...] = ("reparameterization",),
    sign_shape: Callable[[torch.Tensor], tuple[int, ...]] | None = None,
    moments: bool = False,
) -> Layer:
    """A layer whose params are one Gaussian node per entry of ``shapes``.

    Args:
        name: the layer's name (its repr).
        shapes: tensor name -> shape, e.g. ``{"weight": (out, in), "bias": (out,)}``.
        args: the validated prior, posterior init, ``freeze`` and default
            estimator (:func:`bayes_from`).
        op: the deterministic forward, called as ``op(x, **tensors)`` with one
            tensor per name in ``shapes`` (weight samples, or the means).
        check: validates the input ``x`` before anything runs.
        estimators: the estimators the layer supports (see
            :mod:`fblitz.estimators`); local reparameterization and Flipout
            need ``op`` linear in its tensors.
        sign_shape: Flipout's per-example sign shape for an input or output.
        moments: give the layer closed-form moments (:mod:`fblitz.moments`):
            only for ops whose outputs each sum over their own weights (linear).

    Returns:
        A :class:`Layer` with ``init(key, dtype=, device=)`` drawing each node from
        ``args.posterior`` and the same prior on every node. A radial layer
        (``args.family``) draws radial weight noise, follows a per-call
        estimator among plain reparameterization and Flipout only, and tags
        its priors for the KL (:mod:`fblitz.radial`).
    """
    names = tuple(shapes)
    if args.estimator not in estimators:
        raise FblitzValueError(f"estimator must be one of {list(estimators)} for {name}, got {args.estimator!r}")

    def init(key, *, dtype=None, device=None):
        dtype, device = _checks.init_options(dtype, device)
        keys = as_key(key).split(len(names))
        return {n: args.posterior.node(k, shapes[n], dtype=dtype, device=device) for n, k in zip(names, keys)}

    def apply(params, x, eps=None):
        if check is not None:
            check(x)
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            _checks.float_input("x", x)  # finiteness only outside vmap/grad/compile (cheap there)
            like = params[names[0]]["mu"]
            if x.dtype != like.dtype or x.device != like.device:
                raise FblitzTypeError(
                    f"x must have the params' dtype {like.dtype} on {like.device}, got {x.dtype} on {x.device}"
                )
        if args.freeze or eps is None:
            return op(x, **{n: params[n]["mu"] for n in names})
        kind = kind_of(eps)
        if kind not in estimators:
            raise FblitzValueError(f"{name} does not support the {kind} estimator its noise was drawn for")
        if kind == "local_reparameterization":
            return local_reparameterization(op, {n: params[n] for n in names}, x, eps["seed"])
        if kind == "flipout":
            for n in names:
                check_noise(f"eps['{n}']", eps.get(n), params[n]["mu"])
            return flipout(op, {n: params[n] for n in names}, x, eps, sign_shape)
        return op(x, **{n: sample(params[n], eps[n]) for n in names})

    noise, prior = None, args.prior
    radial = args.family == "radial"
    if radial:
        prior = radial_prior(args.prior)
        estimators = tuple(e for e in estimators if e in RADIAL_ESTIMATORS)
    if radial or len(estimators) > 1:

        def noise(key, params, n_samples=None, estimator=None):
            chosen = estimator if estimator in estimators else args.estimator
            if chosen == "reparameterization":  # plain weight noise (radial, or drawn with the rest of the model)
                return radial_noise(key, params, n_samples) if radial else None
            weight_key, seed_key = as_key(key).split(2)
            draw = radial_noise if radial else sample_eps
            eps = {} if chosen == "local_reparameterization" else draw(weight_key, params, n_samples)
            device = params[names[0]]["mu"].device
            return {**eps, "seed": seeded.seeds(seed_key, n_samples, device=device)}

    closed_form = None
    if moments and not radial:

        def closed_form(params, x):
            if check is not None:
                check(x.mean)
            return linear_moments(op, {n: params[n] for n in names}, args.freeze, x)

    return Layer(init, apply, {n: prior for n in names}, name, noise, None, closed_form)

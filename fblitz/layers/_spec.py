"""What the Bayesian layers share (internal): their settings and the init/apply/noise plumbing.

Every weight layer is built the same way: resolve its :class:`~fblitz.layers.Bayes`
settings with :func:`bayes_from` (filling in the layer's BLiTZ defaults),
describe the Gaussian tensors by shape, and hand a deterministic op
``op(x, weight, bias)`` to :func:`gaussian_layer`, which supplies ``init``
(one key per tensor, :func:`init_fn`), ``apply`` (sample each tensor, or take
its mean, then run the op) and ``noise`` (:func:`noise_fn`). Keeping the op
separate from the sampling lets other estimators (local reparameterization,
Flipout) reuse it; the recurrent layers reuse ``init_fn`` and ``noise_fn``.

Example:
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from fblitz.layers.settings import Bayes
    >>> args = bayes_from(Bayes(), rho_init=-7.0)
    >>> layer = gaussian_layer("demo", {"weight": (2, 3)}, args, lambda x, weight: F.linear(x, weight))
    >>> layer.apply(layer.init(0), torch.ones(4, 3)).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from fblitz import _checks
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers.base import Layer
from fblitz.layers.settings import check_bayes
from fblitz.priors import Prior, blitz_default
from fblitz.random import as_key, sample_eps
from fblitz.variational import seeded
from fblitz.variational.estimators import flipout, kind_of, local_reparameterization
from fblitz.variational.moments import linear_moments
from fblitz.variational.posterior import GaussianInit, check_noise, sample
from fblitz.variational.radial import RADIAL_ESTIMATORS, radial_noise, radial_prior


class BayesArgs(NamedTuple):
    """A layer's resolved settings: its prior, posterior init, ``freeze``, default estimator and family.

    ``family`` is the posterior family, ``"gaussian"`` or ``"radial"`` (see :mod:`fblitz.variational.radial`).
    """

    prior: Prior
    posterior: GaussianInit
    freeze: bool
    estimator: str = "reparameterization"
    family: str = "gaussian"

    @property
    def tensor_prior(self) -> Prior:
        """The prior each tensor reports (tagged for the radial KL when ``family`` is radial)."""
        return radial_prior(self.prior) if self.family == "radial" else self.prior

    def check_estimator(self, name: str, estimators: tuple[str, ...]) -> None:
        """Raise unless the layer ``name`` supports the default estimator."""
        if self.estimator not in estimators:
            raise FblitzValueError(
                f"estimator must be one of {list(estimators)} for {name}, got {self.estimator!r} (bayes.estimator)"
            )


def bayes_from(bayes: object, *, rho_init: float, sigma_2: float = 0.002) -> BayesArgs:
    """The settings ``bayes`` (a :class:`~fblitz.layers.Bayes` or None) with the layer's BLiTZ defaults filled in.

    ``rho_init`` and ``sigma_2`` are the layer's BLiTZ defaults: rho's mean,
    and the second sigma of the default scale mixture (pi = 1, so only
    sigma_1 = 0.1 matters; kept for the prior's repr and equality).
    """
    bayes = check_bayes(bayes)
    prior = blitz_default(0.1, sigma_2, 1.0) if bayes.prior is None else bayes.prior
    rho = rho_init if bayes.rho_init is None else bayes.rho_init
    posterior = GaussianInit(bayes.mu_init, bayes.mu_std, rho, bayes.rho_std)
    return BayesArgs(prior, posterior, bayes.freeze, bayes.estimator, bayes.posterior)


def init_fn(shapes: dict[str, tuple[int, ...]], posterior: GaussianInit) -> Callable[..., dict]:
    """``init(key, *, dtype=None, device=None)``: one ``{"mu", "rho"}`` node per entry of ``shapes``, one key each."""
    names = tuple(shapes)

    def init(key, *, dtype=None, device=None):
        dtype, device = _checks.init_options(dtype, device)
        keys = as_key(key).split(len(names))
        return {n: posterior.node(k, shapes[n], dtype=dtype, device=device) for n, k in zip(names, keys)}

    return init


def noise_fn(first: str, estimators: tuple[str, ...], default: str, radial: bool) -> Callable | None:
    """A layer's ``noise(key, params, n_samples=None, estimator=None)``, or None when plain weight noise is all.

    ``estimator`` (a per-call choice) applies when the layer supports it,
    else ``default``. Plain reparameterization needs no noise of the layer's
    own unless the posterior is radial; Flipout draws weight noise and the
    per-example seeds, local reparameterization the seeds only. ``first``
    names a tensor whose device the seeds follow.
    """
    if not radial and len(estimators) == 1:
        return None
    draw = radial_noise if radial else sample_eps

    def noise(key, params, n_samples=None, estimator=None):
        chosen = estimator if estimator in estimators else default
        if chosen == "reparameterization":  # plain weight noise (radial, or drawn with the rest of the model)
            return draw(key, params, n_samples) if radial else None
        weight_key, seed_key = as_key(key).split(2)
        eps = {} if chosen == "local_reparameterization" else draw(weight_key, params, n_samples)
        device = params[first]["mu"].device
        return {**eps, "seed": seeded.seeds(seed_key, n_samples, device=device)}

    return noise


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
        args: the resolved settings (:func:`bayes_from`).
        op: the deterministic forward, called as ``op(x, **tensors)`` with one
            tensor per name in ``shapes`` (weight samples, or the means).
        check: validates the input ``x`` before anything runs.
        estimators: the estimators the layer supports (:mod:`fblitz.variational.estimators`);
            local reparameterization and Flipout need ``op`` linear in its tensors.
        sign_shape: Flipout's per-example sign shape for an input or output.
        moments: give the layer closed-form moments (:mod:`fblitz.variational.moments`):
            only for ops whose outputs each sum over their own weights (linear).

    Returns:
        A :class:`Layer` with ``init(key, dtype=, device=)`` drawing each node from
        ``args.posterior`` and the same prior on every node. A radial layer
        (``args.family``) draws radial weight noise, follows a per-call
        estimator among plain reparameterization and Flipout only, and tags
        its priors for the KL (:mod:`fblitz.variational.radial`).
    """
    names = tuple(shapes)
    args.check_estimator(name, estimators)
    radial = args.family == "radial"
    if radial:
        estimators = tuple(e for e in estimators if e in RADIAL_ESTIMATORS)

    def apply(params, x, eps=None):
        if check is not None:
            check(x)
        if isinstance(x, torch.Tensor) and x.is_floating_point():
            _check_float_input(x, params[names[0]]["mu"])
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

    closed_form = None
    if moments and not radial:

        def closed_form(params, x):
            if check is not None:
                check(x.mean)
            return linear_moments(op, {n: params[n] for n in names}, args.freeze, x)

    noise = noise_fn(names[0], estimators, args.estimator, radial)
    priors = {n: args.tensor_prior for n in names}
    return Layer(init_fn(shapes, args.posterior), apply, priors, name, noise, None, closed_form)


def _check_float_input(x: torch.Tensor, like: torch.Tensor) -> None:
    _checks.float_input("x", x)  # finiteness only outside vmap/grad/compile (cheap there)
    if x.dtype != like.dtype or x.device != like.device:
        raise FblitzTypeError(
            f"x must have the params' dtype {like.dtype} on {like.device}, got {x.dtype} on {x.device}"
        )

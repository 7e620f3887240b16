"""The mean-field Gaussian posterior: sigma = softplus(rho), densities and KL.

Everything is elementwise and differentiable, stable for rho in [-50, 50] in
float32 and float64, and follows the dtype/device of its inputs.
"""

from __future__ import annotations

import contextlib
import math
import threading

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.errors import FblitzValueError, NonFiniteError
from fblitz.tree import gaussian_items, path_name, tree_flatten_with_path

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


_SHARED = threading.local()


@contextlib.contextmanager
def shared_sigmas():
    """Within it, ``softplus(rho)`` is computed once per rho tensor and reused.

    A training step needs sigma for each weight tensor twice -- for the weight
    sample and for the closed-form KL -- and more than twice under some
    estimators; sharing it saves a softplus and its backward per tensor and
    step. The entries hold their rho, so an id is never reused for another
    tensor while the context is open.
    """
    previous = getattr(_SHARED, "cache", None)
    _SHARED.cache = {} if previous is None else previous
    try:
        yield
    finally:
        _SHARED.cache = previous


def _softplus(rho: torch.Tensor) -> torch.Tensor:
    cache = getattr(_SHARED, "cache", None)
    if cache is None:
        return F.softplus(rho)
    hit = cache.get(id(rho))
    if hit is not None and hit[0] is rho:
        return hit[1]
    value = F.softplus(rho)
    cache[id(rho)] = (rho, value)
    return value


def sigma(rho: torch.Tensor) -> torch.Tensor:
    """Posterior standard deviation ``softplus(rho) = log(1 + exp(rho))``, elementwise."""
    return _softplus(_checks.float_input("rho", rho))


def log_sigma(rho: torch.Tensor) -> torch.Tensor:
    """``log(softplus(rho))``.

    Finite with finite gradients while softplus(rho) is a normal float: rho
    above about -87 in float32 and -708 in float64 (sigma > 1e-38), far below
    any useful posterior scale.
    """
    return finite_given_rho("log_sigma", torch.log(_softplus(_checks.float_input("rho", rho))), rho)


def rho_range(dtype: torch.dtype) -> tuple[float, float]:
    """The open interval of rho where sigma = softplus(rho) is a normal float whose square fits ``dtype``.

    About (-87.3, 1.8e19) in float32 and (-708.4, 1.3e154) in float64. Below
    the lower end sigma underflows towards 0 and ``log sigma`` (in every KL)
    is -inf; above the upper end ``sigma ** 2`` overflows.

    Example:
        >>> low, high = rho_range(torch.float32)
        >>> round(low, 1), f"{high:.1e}"
        (-87.3, '1.8e+19')
    """
    info = torch.finfo(dtype)
    return math.log(info.tiny), math.sqrt(info.max)


def non_finite_params(params) -> str:
    """Why ``params`` cannot give finite outputs, as one phrase ('' if nothing is wrong).

    Names every floating leaf holding NaN or infinity, then every rho outside
    :func:`rho_range` (:func:`rho_out_of_range`). Explains non-finite
    predictions, for which the layers do not check values one by one.
    """
    paths, leaves, _ = tree_flatten_with_path(params)
    found = [
        f"params at '{path_name(path)}' hold NaN or infinity"
        for path, leaf in zip(paths, leaves)
        if isinstance(leaf, torch.Tensor)
        and leaf.is_floating_point()
        and _checks.eager(leaf)
        and not bool(torch.isfinite(leaf.detach()).all())
    ]
    rho = rho_out_of_range(params)
    return "; ".join(found + ([rho] if rho else []))


def blame_params(what: str, params, *values: torch.Tensor) -> None:
    """Raise :class:`NonFiniteError` naming the params when a tensor of ``values`` is not finite because of them.

    For outputs computed without per-layer value checks (prediction, closed-form
    moments): a NaN or infinite output is first blamed on what
    :func:`non_finite_params` finds; when the params are sound, nothing is raised
    here and the caller's own finiteness check speaks.
    """
    if all(not _checks.eager(v) or bool(torch.isfinite(v).all()) for v in values):
        return
    cause = non_finite_params(params)
    if cause:
        raise NonFiniteError(f"{what} are not finite: {cause}")


def rho_out_of_range(params) -> str:
    """The Gaussian nodes of ``params`` whose rho leaves :func:`rho_range`, as one phrase ('' if none).

    Used to explain a non-finite training step: ``"rho at '0.weight' reaches -1e+04 (safe: (-87.3, 1.8e+19)
    for torch.float32)"``. Meta tensors (no values) are skipped.
    """
    found = []
    for path, node in gaussian_items(params):
        rho = node["rho"]
        if not isinstance(rho, torch.Tensor) or not rho.is_floating_point() or not _checks.eager(rho):
            continue
        low, high = rho_range(rho.dtype)
        r = rho.detach()
        worst = float(r.min()) if bool((r <= low).any()) else float(r.max()) if bool((r >= high).any()) else None
        if worst is not None:
            safe = f"({low:.1f}, {high:.2g}) for {rho.dtype}"
            found.append(f"rho at '{path_name(path)}' reaches {worst:.4g} (safe: {safe})")
    return "; ".join(found)


def finite_given_rho(what: str, value: torch.Tensor, rho: torch.Tensor, mu: torch.Tensor | None = None) -> torch.Tensor:
    """``value``, or a :class:`~fblitz.errors.NonFiniteError` that names the input to blame.

    Only when ``value`` is not finite (so the check costs one ``isfinite``)
    are ``rho`` and ``mu`` inspected: the message names ``rho`` and its safe
    range (:func:`rho_range`) when rho lies outside it, else ``mu``'s size.
    """
    if not _checks.eager(value) or bool(torch.isfinite(value).all()):
        return value
    low, high = rho_range(rho.dtype)
    r = rho.detach()
    wider = "" if rho.dtype == torch.float64 else f"; float64 allows ({rho_range(torch.float64)[0]:.1f}, 1.3e154)"
    if bool((r <= low).any() | (r >= high).any()):
        raise NonFiniteError(
            f"{what} is not finite: rho must lie in ({low:.1f}, {high:.2g}) for {rho.dtype} (sigma = softplus(rho) "
            f"underflows to 0 below, sigma**2 overflows above), got rho from {float(r.min()):.4g} to "
            f"{float(r.max()):.4g}{wider}"
        )
    if mu is not None:
        raise NonFiniteError(
            f"{what} is not finite: mu and sigma = softplus(rho) overflow {rho.dtype} when squared, got |mu| up to "
            f"{float(mu.detach().abs().max()):.4g} and rho up to {float(r.max()):.4g}"
        )
    return _checks.finite_result(what, value)


def inverse_softplus(sigma_value: torch.Tensor | float) -> torch.Tensor:
    """The rho with ``softplus(rho) == sigma_value`` (requires sigma_value > 0).

    Uses ``rho = s + log(-expm1(-s))``, exact for tiny and huge s alike.

    Example:
        >>> float(sigma(inverse_softplus(torch.tensor(0.05))))  # doctest: +ELLIPSIS
        0.05...
    """
    if not isinstance(sigma_value, torch.Tensor):
        sigma_value = torch.tensor(_checks.positive("sigma", sigma_value), dtype=torch.get_default_dtype())
    elif not bool((_checks.float_input("sigma", sigma_value) > 0).all()):
        raise FblitzValueError("sigma must be > 0 everywhere to invert softplus")
    return sigma_value + torch.log(-torch.expm1(-sigma_value))


def reparameterize(mu: torch.Tensor, rho: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """A weight sample ``mu + softplus(rho) * eps`` (all three of one shape).

    Values are checked once, on the sample (it runs every step): a
    non-finite sample raises :class:`~fblitz.errors.NonFiniteError` naming the
    input that holds a NaN or infinity.
    """
    _same_shapes(check_values=False, mu=mu, rho=rho, eps=eps)
    # a multiply and an add (cheaper to differentiate than addcmul), with or without autograd: the
    # rounding of addcmul differs, and a sample must not depend on whether its params require grad
    w = mu + _softplus(rho) * eps
    return _finite_or_blame("the weight sample", w, mu=mu, rho=rho, eps=eps)


def gaussian_log_prob(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Elementwise log N(x; mean, std^2); ``std`` must be > 0."""
    _checks.float_input("x", x)
    if isinstance(std, torch.Tensor):
        _checks.float_input("std", std)
        if std.dim():
            _checks.same_shape("std", std, x.shape, "x")
        if _checks.eager(std) and not bool((std > 0).all()):
            raise FblitzValueError("std must be > 0 everywhere")
    else:
        std = _checks.positive("std", std)
    z = (x - mean) / std
    return -0.5 * z * z - torch.log(torch.as_tensor(std, dtype=z.dtype, device=z.device)) - LOG_SQRT_2PI


def student_t_log_prob(x: torch.Tensor, loc, scale, df) -> torch.Tensor:
    """Elementwise log density of a location-scale Student-t at ``x``.

    ``lgamma((df+1)/2) - lgamma(df/2) - log(pi df)/2 - log(scale) - (df+1)/2 log1p(z^2 / df)``
    with ``z = (x - loc) / scale``; ``scale`` and ``df`` (> 0) are floats or tensors
    of ``x``'s shape (nothing is broadcast). ``log1p`` keeps it exact for small z.

    Example:
        >>> round(float(student_t_log_prob(torch.zeros(1), 0.0, 1.0, 1.0)), 4)  # Cauchy: -log(pi)
        -1.1447
    """
    _checks.float_input("x", x)
    values = {}
    for name, value in (("scale", scale), ("df", df)):
        if isinstance(value, torch.Tensor):
            _checks.float_input(name, value)
            _checks.same_shape(name, value, x.shape, "x")
            if _checks.eager(value) and not bool((value > 0).all()):
                raise FblitzValueError(f"{name} must be > 0 everywhere")
        else:
            value = torch.tensor(_checks.positive(name, value), dtype=x.dtype, device=x.device)
        values[name] = value
    scale, df = values["scale"], values["df"]
    z = (x - loc) / scale
    half_df = 0.5 * df
    log_norm = torch.lgamma(half_df + 0.5) - torch.lgamma(half_df) - 0.5 * torch.log(math.pi * df) - torch.log(scale)
    return log_norm - (half_df + 0.5) * torch.log1p(z * z / df)


def posterior_log_prob(eps: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """Elementwise log q(w) at ``w = mu + sigma * eps``, written through eps.

    Equal in value and total derivative to ``gaussian_log_prob(w, mu, sigma)``
    but never divides by a possibly tiny sigma.
    """
    _same_shapes(check_values=False, eps=eps, rho=rho)
    value = -0.5 * eps * eps - log_sigma(rho) - LOG_SQRT_2PI
    return _finite_or_blame("log q(w)", value, eps=eps, rho=rho)


def gaussian_kl(mu_q: torch.Tensor, rho_q: torch.Tensor, mu_p: float, sigma_p: float) -> torch.Tensor:
    """Elementwise KL( N(mu_q, softplus(rho_q)^2) || N(mu_p, sigma_p^2) ).

    ``(s^2 + (mu_q - mu_p)^2) / (2 sigma_p^2) - log(s) + log(sigma_p) - 1/2``
    with s = softplus(rho_q), written with few tensor ops (it runs every step).
    """
    _same_shapes(mu=mu_q, rho=rho_q)
    s = _softplus(rho_q)
    shift = mu_q if mu_p == 0.0 else mu_q - mu_p
    spread = torch.addcmul(s * s, shift, shift)
    kl = spread.mul(0.5 / (sigma_p * sigma_p)) - torch.log(s) + (math.log(sigma_p) - 0.5)
    return finite_given_rho("the Gaussian KL", kl, rho_q, mu_q)


def _same_shapes(check_values: bool = True, **tensors: torch.Tensor) -> None:
    """Check floating tensors of one shape (no broadcasting); values only when eager and ``check_values``."""
    (first_name, first), *rest = tensors.items()
    _checks.float_input(first_name, first, finite=check_values)
    for name, value in rest:
        _checks.float_input(name, value, finite=check_values)
        _checks.same_shape(name, value, first.shape, first_name)


def _finite_or_blame(what: str, value: torch.Tensor, **inputs: torch.Tensor) -> torch.Tensor:
    """``value``; if it is not finite (checked when eager), a NonFiniteError naming a non-finite input.

    One ``isfinite`` on the result instead of one per input; the inputs are
    read only to explain a failure.
    """
    if not _checks.eager(value) or bool(torch.isfinite(value).all()):
        return value
    for name, tensor in inputs.items():
        _checks.float_input(name, tensor.detach())
    return finite_given_rho(what, value, inputs["rho"]) if "rho" in inputs else _checks.finite_result(what, value)

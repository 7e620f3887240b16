"""A learned observation-noise scale, for regression with learned noise."""

from __future__ import annotations

import torch

from fblitz import _checks
from fblitz.distributions import inverse_softplus
from fblitz.errors import FblitzValueError
from fblitz.layers.base import Layer


def learned_noise(features: int, init_sigma: float = 1.0) -> Layer:
    """Append a learned, input-independent noise scale to a regression output.

    Output ``[mean, raw_scale]`` of shape (..., 2 * features), where
    ``softplus(raw_scale)`` is the noise standard deviation; train it with
    :func:`fblitz.likelihoods.heteroscedastic_gaussian`. The scale is a
    deterministic point estimate (params ``{"noise_rho": (features,)}``),
    learned jointly with the Bayesian weights (homoscedastic noise).

    Example:
        >>> import torch
        >>> layer = learned_noise(1, init_sigma=0.5)
        >>> layer.apply(layer.init(0), torch.zeros(4, 1)).shape
        torch.Size([4, 2])
    """
    features = _checks.integer("features", features, minimum=1)
    init_sigma = _checks.positive("init_sigma", init_sigma)

    def init(key=None, *, dtype=None, device=None):
        dtype, device = _checks.init_options(dtype, device)
        dtype = torch.get_default_dtype() if dtype is None else dtype
        sigma = torch.full((features,), init_sigma, dtype=dtype, device=device)
        return {"noise_rho": inverse_softplus(sigma)}

    def apply(params, x, eps=None):
        _checks.last_dim("x", x, features)
        return torch.cat([x, params["noise_rho"].expand(x.shape)], dim=-1)

    return Layer(init, apply, {"noise_rho": None}, f"learned_noise({features})")


def learned_df(features: int, init_df: float = 10.0, min_df: float = 1.0) -> Layer:
    """Append learned, input-independent Student-t degrees of freedom after ``learned_noise``.

    Takes ``[location, raw_scale]`` of shape (..., 2 * features) and outputs
    ``[location, raw_scale, raw_df]`` of shape (..., 3 * features), where
    ``softplus(raw_df) + min_df`` are the degrees of freedom; train it with
    :func:`fblitz.likelihoods.student_t` with ``df=None`` and the same ``min_df``.
    A deterministic point estimate (params ``{"df_rho": (features,)}``).

    Example:
        >>> import torch
        >>> layer = learned_df(1, init_df=5.0)
        >>> layer.apply(layer.init(0), torch.zeros(4, 2)).shape
        torch.Size([4, 3])
    """
    features = _checks.integer("features", features, minimum=1)
    min_df = _checks.positive("min_df", min_df)
    init_df = _checks.real_number("init_df", init_df)
    if init_df <= min_df:
        raise FblitzValueError(f"init_df must be > min_df ({min_df}), got {init_df}")

    def init(key=None, *, dtype=None, device=None):
        dtype, device = _checks.init_options(dtype, device)
        dtype = torch.get_default_dtype() if dtype is None else dtype
        return {"df_rho": inverse_softplus(torch.full((features,), init_df - min_df, dtype=dtype, device=device))}

    def apply(params, x, eps=None):
        _checks.last_dim("x", x, 2 * features)
        return torch.cat([x, params["df_rho"].expand(x.shape[:-1] + (features,))], dim=-1)

    return Layer(init, apply, {"df_rho": None}, f"learned_df({features})")

"""Dropout with its mask drawn from the noise tree (an explicit key, never the global RNG)."""

from __future__ import annotations

from fblitz import _checks, seeded
from fblitz.errors import FblitzValueError
from fblitz.layers.base import Layer, no_params


def dropout(p: float = 0.5) -> Layer:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by 1/(1-p).

    The mask is a pure function of an int64 seed in the noise tree
    (``{"seed": ()}`` per draw; :func:`fblitz.layers.sample_noise` draws it
    from your key), so it is reproducible and each weight sample under
    ``vmap`` gets its own mask -- Monte Carlo dropout comes for free. With
    ``eps=None`` (the posterior-mean / evaluation pass) dropout is off.

    ``apply(params, x, eps)`` keeps ``x``'s shape.

    Example:
        >>> import torch
        >>> from fblitz.layers import sample_noise
        >>> layer = dropout(0.5)
        >>> eps = sample_noise(layer, 0, {})
        >>> y = layer.apply({}, torch.ones(1000), eps)
        >>> sorted(set(y.tolist()))
        [0.0, 2.0]
        >>> layer.apply({}, torch.ones(3), None).tolist()
        [1.0, 1.0, 1.0]
    """
    p = _checks.probability("p", p)
    if p == 1.0:
        raise FblitzValueError("p must be < 1 (p = 1 would zero every activation), got 1.0")

    def apply(params, x, eps=None):
        _checks.tensor("x", x, floating=True)
        if eps is None or p == 0.0:
            return x
        keep = seeded.uniform(eps["seed"], x.shape, dtype=x.dtype, device=x.device) >= p
        return x * keep / (1.0 - p)

    def noise(key, params, n_samples=None, estimator=None):
        return {"seed": seeded.seeds(key, n_samples)}

    return Layer(no_params, apply, {}, f"dropout({p})", noise)

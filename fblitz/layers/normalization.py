"""Batch and layer normalisation with deterministic (point-estimate) affine parameters.

Batch norm keeps running statistics in an explicit *state* tree, never on the
layer: ``init_state(model)`` makes it, ``apply_with_state(model, params, state,
x, eps, train=True)`` normalises with the batch's statistics and returns the
updated running statistics, ``train=False`` uses the stored ones. The plain
``apply(params, x, eps)`` normalises with the batch's statistics and keeps no
state (what a training loss needs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.layers.base import Layer, StateSpec, no_params


def _affine(shape: tuple[int, ...], enabled: bool, bias: bool = True):
    """``(init, priors)`` of the deterministic scale (ones) and shift (zeros)."""
    if not enabled:
        return no_params, {}
    names = ("weight", "bias") if bias else ("weight",)

    def init(key=None, *, dtype=None, device=None):
        dtype, device = _checks.init_options(dtype, device)
        fill = {"weight": torch.ones, "bias": torch.zeros}
        return {name: fill[name](shape, dtype=dtype, device=device) for name in names}

    return init, dict.fromkeys(names)


def _batch_norm(dims: int, num_features, eps, momentum, affine, track_running_stats) -> Layer:
    features = _checks.integer("num_features", num_features, minimum=1)
    eps = _checks.positive("eps", eps)
    if momentum is not None:
        momentum = _checks.probability("momentum", momentum)
    track_running_stats = _checks.boolean("track_running_stats", track_running_stats)
    # (N, C) or (N, C, L) for 1-d; (N, C, H, W) for 2-d; (N, C, D, H, W) for 3-d
    ranks = (2, 3) if dims == 1 else (dims + 2,)

    def check(x, batch_statistics=True):
        _checks.tensor("x", x, ndim=ranks, floating=True)
        if x.shape[1] != features:
            raise FblitzValueError(f"x must have {features} channels in dimension 1, got shape {tuple(x.shape)}")
        if batch_statistics and x.numel() // features < 2:
            raise FblitzValueError(f"batch norm needs more than one value per channel, got shape {tuple(x.shape)}")
        return x

    def normalise(params, x, mean=None, var=None):
        training = mean is None
        return F.batch_norm(x, mean, var, params.get("weight"), params.get("bias"), training=training, eps=eps)

    def apply(params, x, noise=None):
        return normalise(params, check(x))

    def state_init(*, dtype=None, device=None):
        dtype, device = _checks.init_options(dtype, device)
        if not track_running_stats:
            return {}
        return {
            "running_mean": torch.zeros(features, dtype=dtype, device=device),
            "running_var": torch.ones(features, dtype=dtype, device=device),
            "num_batches_tracked": torch.zeros((), dtype=torch.int64, device=device),
        }

    def state_apply(params, state, x, noise, train):
        x = check(x, batch_statistics=train or not track_running_stats)
        if not track_running_stats:
            return normalise(params, x), state
        if not train:
            return normalise(params, x, state["running_mean"], state["running_var"]), state
        reduce = [0, *range(2, x.dim())]
        count = state["num_batches_tracked"] + 1
        # momentum None: the cumulative average over all batches so far, as torch
        factor = 1.0 / count.to(x.dtype) if momentum is None else momentum
        batch_var = x.detach().var(dim=reduce, unbiased=True)
        new_state = {
            "running_mean": torch.lerp(state["running_mean"], x.detach().mean(dim=reduce), factor),
            "running_var": torch.lerp(state["running_var"], batch_var, factor),
            "num_batches_tracked": count,
        }
        return normalise(params, x), new_state

    init, priors = _affine((features,), _checks.boolean("affine", affine))
    return Layer(init, apply, priors, f"batch_norm{dims}d({features})", None, StateSpec(state_init, state_apply))


def _batch_norm_constructor(dims: int, shapes: str):
    def batch_norm(
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> Layer:
        return _batch_norm(dims, num_features, eps, momentum, affine, track_running_stats)

    batch_norm.__name__ = batch_norm.__qualname__ = f"batch_norm{dims}d"
    batch_norm.__doc__ = _BATCH_NORM_DOC.format(dims=dims, shapes=shapes)
    return batch_norm


_BATCH_NORM_DOC = """Batch normalisation over {shapes} inputs, as ``nn.BatchNorm{dims}d``.

    Params ``{{"weight": (C,), "bias": (C,)}}`` (plain tensors, trained as point
    estimates; ``{{}}`` with ``affine=False``); state ``{{"running_mean": (C,),
    "running_var": (C,), "num_batches_tracked": ()}}`` (see the module docstring;
    ``momentum=None`` keeps a cumulative average, as torch).
"""

batch_norm1d = _batch_norm_constructor(1, "(N, C) or (N, C, L)")
batch_norm2d = _batch_norm_constructor(2, "(N, C, H, W)")
batch_norm3d = _batch_norm_constructor(3, "(N, C, D, H, W)")
batch_norm1d.__doc__ += """
    Example:
        >>> import torch
        >>> from fblitz.layers import init_state, apply_with_state
        >>> bn = batch_norm1d(3)
        >>> y, state = apply_with_state(bn, bn.init(0), init_state(bn), torch.arange(24.0).view(8, 3), train=True)
        >>> int(state["num_batches_tracked"])
        1
"""


def layer_norm(normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True) -> Layer:
    """Layer normalisation over the trailing ``normalized_shape`` axes, as ``nn.LayerNorm``.

    Params ``{"weight": normalized_shape, "bias": normalized_shape}`` (plain
    tensors; absent with ``elementwise_affine=False``; no bias with ``bias=False``).

    Example:
        >>> import torch
        >>> ln = layer_norm(4)
        >>> ln.apply(ln.init(0), torch.tensor([[1.0, 2.0, 3.0, 4.0]])).mean().abs() < 1e-6
        tensor(True)
    """
    shape = tuple(normalized_shape) if isinstance(normalized_shape, (tuple, list)) else (normalized_shape,)
    shape = tuple(_checks.integer("normalized_shape", n, minimum=1) for n in shape)
    eps = _checks.positive("eps", eps)

    def apply(params, x, noise=None):
        _checks.tensor("x", x, floating=True)
        if tuple(x.shape[x.dim() - len(shape) :]) != shape or x.dim() < len(shape):
            raise FblitzValueError(f"x must end with the dimensions {shape}, got shape {tuple(x.shape)}")
        return F.layer_norm(x, shape, params.get("weight"), params.get("bias"), eps)

    init, priors = _affine(
        shape, _checks.boolean("elementwise_affine", elementwise_affine), _checks.boolean("bias", bias)
    )
    return Layer(init, apply, priors, f"layer_norm({shape})")

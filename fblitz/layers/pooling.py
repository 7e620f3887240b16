"""Pooling layers (parameter-free, deterministic): max, average and adaptive average."""

from __future__ import annotations

import torch.nn.functional as F

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.layers._spec import ntuple
from fblitz.layers.base import Layer, no_params

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_ADAPTIVE_AVG = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


def _window(dims: int, kernel_size, stride, padding) -> tuple[tuple[int, ...], ...]:
    """Validated (kernel, stride, padding) of a pooling window; stride defaults to the kernel."""
    kernel = ntuple("kernel_size", kernel_size, dims, minimum=1)
    stride = kernel if stride is None else ntuple("stride", stride, dims, minimum=1)
    padding = ntuple("padding", padding, dims, minimum=0)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise FblitzValueError(f"padding must be at most half of kernel_size {kernel}, got {padding}")
    return kernel, stride, padding


def _pool_layer(dims: int, label: str, fn, **kwargs) -> Layer:
    text = ", ".join(f"{k}={v}" for k, v in kwargs.items())

    def apply(params, x, eps=None):
        # (N, C, *spatial) or unbatched (C, *spatial)
        return fn(_checks.tensor("x", x, ndim=(dims + 1, dims + 2), floating=True), **kwargs)

    return Layer(no_params, apply, {}, f"{label}{dims}d({text})")


def max_pool(dims: int, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False) -> Layer:
    """Max pooling over ``dims`` (1, 2 or 3) trailing spatial axes, as ``F.max_pool{dims}d``.

    Input (N, C, *spatial) or (C, *spatial).

    Example:
        >>> import torch
        >>> max_pool(2, 2).apply({}, torch.arange(16.0).view(1, 1, 4, 4)).flatten().tolist()
        [5.0, 7.0, 13.0, 15.0]
    """
    dims = _checks.one_of("dims", dims, (1, 2, 3))
    kernel, stride, padding = _window(dims, kernel_size, stride, padding)
    dilation = ntuple("dilation", dilation, dims, minimum=1)
    return _pool_layer(
        dims,
        "max_pool",
        _MAX[dims],
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=_checks.boolean("ceil_mode", ceil_mode),
    )


def avg_pool(dims: int, kernel_size, stride=None, padding=0, ceil_mode: bool = False) -> Layer:
    """Average pooling over ``dims`` trailing spatial axes, as ``F.avg_pool{dims}d``.

    Example:
        >>> import torch
        >>> avg_pool(1, 2).apply({}, torch.tensor([[[1.0, 3.0, 5.0, 7.0]]])).tolist()
        [[[2.0, 6.0]]]
    """
    dims = _checks.one_of("dims", dims, (1, 2, 3))
    kernel, stride, padding = _window(dims, kernel_size, stride, padding)
    return _pool_layer(
        dims,
        "avg_pool",
        _AVG[dims],
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        ceil_mode=_checks.boolean("ceil_mode", ceil_mode),
    )


def adaptive_avg_pool(dims: int, output_size) -> Layer:
    """Adaptive average pooling to ``output_size``, as ``F.adaptive_avg_pool{dims}d``.

    Example:
        >>> import torch
        >>> adaptive_avg_pool(2, 1).apply({}, torch.ones(2, 3, 5, 5)).shape
        torch.Size([2, 3, 1, 1])
    """
    dims = _checks.one_of("dims", dims, (1, 2, 3))
    size = ntuple("output_size", output_size, dims, minimum=1)
    return _pool_layer(dims, "adaptive_avg_pool", _ADAPTIVE_AVG[dims], output_size=size)

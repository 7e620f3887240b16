"""Bayesian transposed convolutions: ``conv_transpose1d``, ``conv_transpose2d``, ``conv_transpose3d``."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz.errors import FblitzValueError
from fblitz.layers._spec import bayes_from, ntuple
from fblitz.layers.base import Layer
from fblitz.layers.conv import check_channels, check_input, conv_layer
from fblitz.layers.settings import Bayes, takes_bayes

_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class ConvTransposeSpec(NamedTuple):
    """The deterministic part of a transposed convolution; ``op(x, weight, bias)`` runs it."""

    dims: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    def op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``F.conv_transpose{dims}d`` of ``x`` (N, C_in, *S) or (C_in, *S), ``weight`` (C_in, C_out/groups, *k)."""
        return _CONV_TRANSPOSE[self.dims](
            x, weight, bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation
        )

    def output_size(self, size: tuple[int, ...]) -> tuple[int, ...]:
        """The spatial output size for spatial input size ``size`` (torch's formula)."""
        return tuple(
            (n - 1) * s - 2 * p + d * (k - 1) + q + 1
            for n, s, p, d, k, q in zip(
                size, self.stride, self.padding, self.dilation, self.kernel_size, self.output_padding
            )
        )

    def check(self, x: torch.Tensor, in_channels: int) -> None:
        """Raise unless ``x`` is a floating (N, C, *S) or (C, *S) tensor with a non-empty output."""
        check_input(x, self.dims, in_channels)
        out = self.output_size(tuple(x.shape[-self.dims :]))
        if min(out) < 1:
            raise FblitzValueError(
                f"x of spatial size {tuple(x.shape[-self.dims :])} gives an empty output {out} "
                f"with padding={self.padding}"
            )


def conv_transpose_spec(dims, kernel_size, stride, padding, output_padding, dilation, groups) -> ConvTransposeSpec:
    """A validated :class:`ConvTransposeSpec` from torch's ``ConvTranspose*d`` arguments."""
    kernel_size = ntuple("kernel_size", kernel_size, dims, minimum=1)
    stride = ntuple("stride", stride, dims, minimum=1)
    padding = ntuple("padding", padding, dims, minimum=0)
    output_padding = ntuple("output_padding", output_padding, dims, minimum=0)
    dilation = ntuple("dilation", dilation, dims, minimum=1)
    for q, s, d in zip(output_padding, stride, dilation):
        if q >= s and q >= d:
            raise FblitzValueError(
                f"output_padding must be smaller than either stride or dilation (as torch), "
                f"got output_padding={output_padding}, stride={stride}, dilation={dilation}"
            )
    return ConvTransposeSpec(dims, kernel_size, stride, padding, output_padding, dilation, groups)


_DOC = """A Bayesian {dims}-d transposed convolution (torch's ``nn.ConvTranspose{dims}d``).

    ``y = F.conv_transpose{dims}d(x, W, b, ...)`` with W, b ~ q = N(mu, softplus(rho)^2).
    BLiTZ has no transposed convolution. Everything after ``kernel_size`` is
    keyword-only. ``kernel_size``, ``stride``, ``padding``, ``output_padding``
    and ``dilation`` take an int or a {dims}-tuple; ``output_padding`` must be
    smaller than ``stride`` or ``dilation`` in each dimension.
    ``padding_mode`` must be ``"zeros"`` (as in torch). ``bayes`` (a
    :class:`~fblitz.layers.Bayes`, None for the defaults) as for the
    convolutions: prior N(0, 0.1^2), mu ~ N(0, 0.1^2), rho ~ N(-6, 0.1^2), all
    three estimators, the Gaussian or radial posterior.

    Params tree::

        {{"weight": {{"mu": (C_in, C_out / groups, *k), "rho": ...}},
         "bias":   {{"mu": (C_out,), "rho": (C_out,)}}}}     # absent when bias=False

    ``apply(params, x, eps)`` maps x of shape (N, C_in, *S) or (C_in, *S) to
    (N, C_out, *S') or (C_out, *S') with
    S' = (S - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.

    Example:
        >>> import torch
        >>> layer = conv_transpose{dims}d(2, 4, 3, stride=2, padding=1, output_padding=1)
        >>> layer.apply(layer.init(0), torch.ones(5, 2, {spatial})).shape
        torch.Size([5, 4, {doubled}])
    """


def _conv_transpose_constructor(dims: int):
    def conv_transpose(
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        *,
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        output_padding: int | tuple[int, ...] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, ...] = 1,
        padding_mode: str = "zeros",
        bayes: Bayes | None = None,
    ) -> Layer:
        in_channels, out_channels, groups = check_channels(in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise FblitzValueError(
                f"padding_mode of a transposed convolution must be 'zeros' (as torch), got {padding_mode!r}"
            )
        spec = conv_transpose_spec(dims, kernel_size, stride, padding, output_padding, dilation, groups)
        args = bayes_from(bayes, rho_init=-6.0)
        weight_shape = (in_channels, out_channels // groups, *spec.kernel_size)
        return conv_layer(f"conv_transpose{dims}d", in_channels, out_channels, weight_shape, bias, spec, args)

    conv_transpose.__name__ = conv_transpose.__qualname__ = f"conv_transpose{dims}d"
    conv_transpose.__doc__ = _DOC.format(dims=dims, spatial=", ".join(["3"] * dims), doubled=", ".join(["6"] * dims))
    return takes_bayes(conv_transpose)


conv_transpose1d = _conv_transpose_constructor(1)
conv_transpose2d = _conv_transpose_constructor(2)
conv_transpose3d = _conv_transpose_constructor(3)

"""Bayesian convolutions: ``conv1d``, ``conv2d``, ``conv3d`` (BLiTZ's ``BayesianConv*d``)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz import _checks
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers._spec import bayes_from, gaussian_layer, ntuple
from fblitz.layers.base import Layer
from fblitz.layers.settings import Bayes, takes_bayes
from fblitz.variational.estimators import ESTIMATORS

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class ConvSpec(NamedTuple):
    """The deterministic part of a convolution; ``op(x, weight, bias)`` runs it.

    ``pairs`` holds the (before, after) padding of each spatial dimension.
    Symmetric zero padding goes to ``F.conv*d`` (``padding``); any other
    padding is applied first by ``F.pad(x, pad, pad_mode)``, as torch does for
    non-zero padding modes and uneven ``"same"`` padding.
    """

    dims: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    pairs: tuple[tuple[int, int], ...]
    pad: tuple[int, ...]
    pad_mode: str

    def op(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``F.conv{dims}d`` of ``x`` (N, C_in, *S) or (C_in, *S) with ``weight`` (C_out, C_in/groups, *k)."""
        if self.pad:
            x = F.pad(x, self.pad, mode=self.pad_mode)
        return _CONV[self.dims](x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def check(self, x: torch.Tensor, in_channels: int) -> None:
        """Raise unless ``x`` is a floating (N, C, *S) or (C, *S) tensor the conv accepts."""
        check_input(x, self.dims, in_channels)
        for axis, size, (before, after), k, d in zip(
            range(-self.dims, 0), x.shape[-self.dims :], self.pairs, self.kernel_size, self.dilation
        ):
            limit = {"reflect": size - 1, "circular": size}.get(self.padding_mode)
            if limit is not None and max(before, after) > limit:
                raise FblitzValueError(
                    f"x is too small in dimension {axis} ({size}) for padding {(before, after)} "
                    f"with padding_mode={self.padding_mode!r} (at most {limit})"
                )
            if size + before + after < d * (k - 1) + 1:
                raise FblitzValueError(
                    f"x is too small in dimension {axis}: {size} + padding {before + after} is less "
                    f"than the dilated kernel size {d * (k - 1) + 1}"
                )


def check_input(x: object, dims: int, channels: int) -> None:
    """Raise unless ``x`` is a floating tensor of shape (N, channels, *S) or (channels, *S), len(S) == dims."""
    _checks.tensor("x", x, floating=True)
    if x.dim() not in (dims + 1, dims + 2):
        raise FblitzValueError(
            f"x must have shape (N, C, *spatial) or (C, *spatial) with {dims} spatial dimension(s), "
            f"i.e. {dims + 2} or {dims + 1} dimensions, got shape {tuple(x.shape)}"
        )
    if x.shape[-dims - 1] != channels:
        raise FblitzValueError(f"x must have {channels} channels in dimension {-dims - 1}, got shape {tuple(x.shape)}")


def check_channels(in_channels: object, out_channels: object, groups: object) -> tuple[int, int, int]:
    """Validate channel counts and ``groups`` (both counts divisible by ``groups``)."""
    in_channels = _checks.integer("in_channels", in_channels, minimum=1)
    out_channels = _checks.integer("out_channels", out_channels, minimum=1)
    groups = _checks.integer("groups", groups, minimum=1)
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if value % groups:
            raise FblitzValueError(f"{name} must be divisible by groups={groups}, got {value}")
    return in_channels, out_channels, groups


def conv_layer(kind, in_channels, out_channels, weight_shape, bias, spec, args) -> Layer:
    """The layer of a (transposed) convolution ``spec`` with a ``weight_shape`` weight and optional bias."""
    shapes = {"weight": weight_shape}
    if _checks.boolean("bias", bias):
        shapes["bias"] = (out_channels,)
    name = f"{kind}({in_channels}, {out_channels}, kernel_size={spec.kernel_size}{'' if bias else ', bias=False'})"
    return gaussian_layer(
        name,
        shapes,
        args,
        spec.op,
        lambda x: spec.check(x, in_channels),
        estimators=ESTIMATORS,
        sign_shape=lambda t: channel_signs(t, spec.dims),
    )


def channel_signs(t: torch.Tensor, dims: int) -> tuple[int, ...]:
    """Flipout signs for a convolution: one per example and channel, shared over the ``dims`` spatial axes."""
    return (*t.shape[: t.dim() - dims], *([1] * dims))


def conv_spec(dims, kernel_size, stride, padding, dilation, groups, padding_mode) -> ConvSpec:
    """A validated :class:`ConvSpec` from torch's ``Conv*d`` arguments."""
    kernel_size = ntuple("kernel_size", kernel_size, dims, minimum=1)
    stride = ntuple("stride", stride, dims, minimum=1)
    dilation = ntuple("dilation", dilation, dims, minimum=1)
    if not isinstance(padding_mode, str):
        raise FblitzTypeError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    _checks.one_of("padding_mode", padding_mode, PADDING_MODES)
    common, rest = (dims, kernel_size, stride), (dilation, groups)
    if isinstance(padding, str):
        _checks.one_of("padding", padding, ("valid", "same"))
        if padding == "same" and stride != (1,) * dims:
            raise FblitzValueError(f"padding='same' needs stride 1 (as torch), got stride={stride}")
        totals = [d * (k - 1) if padding == "same" else 0 for k, d in zip(kernel_size, dilation)]
        pairs = tuple((t // 2, t - t // 2) for t in totals)
    else:
        pairs = tuple((p, p) for p in ntuple("padding", padding, dims, minimum=0))
    if padding_mode == "zeros" and all(before == after for before, after in pairs):
        return ConvSpec(*common, tuple(before for before, _ in pairs), *rest, padding_mode, pairs, (), "constant")
    pad = tuple(p for pair in reversed(pairs) for p in pair)  # F.pad wants the last dimension first
    pad_mode = "constant" if padding_mode == "zeros" else padding_mode
    return ConvSpec(*common, (0,) * dims, *rest, padding_mode, pairs, pad, pad_mode)


_DOC = """A Bayesian {dims}-d convolution (BLiTZ's ``BayesianConv{dims}d``, torch's ``nn.Conv{dims}d``).

    ``y = F.conv{dims}d(x, W, b, ...)`` with W, b ~ q = N(mu, softplus(rho)^2).
    torch's and BLiTZ's arguments, with their defaults; everything after
    ``kernel_size`` is keyword-only because torch (stride, padding, ...) and
    BLiTZ (groups, stride, ...) order them differently. ``kernel_size``,
    ``stride``, ``padding`` and ``dilation`` take an int or a {dims}-tuple;
    ``padding`` also ``"valid"`` or ``"same"``; ``padding_mode`` is one of
    ``"zeros"``, ``"reflect"``, ``"replicate"``, ``"circular"``. ``bayes`` (a
    :class:`~fblitz.layers.Bayes`, None for the defaults) holds the prior,
    posterior init, posterior family, estimator (all three apply) and
    ``freeze``; the defaults are BLiTZ's: prior N(0, 0.1^2), mu ~ N(0, 0.1^2),
    rho ~ N({rho}, 0.1^2).

    Params tree::

        {{"weight": {{"mu": (C_out, C_in / groups, *k), "rho": ...}},
         "bias":   {{"mu": (C_out,), "rho": (C_out,)}}}}     # absent when bias=False

    ``apply(params, x, eps)`` maps x of shape (N, C_in, *S) or (C_in, *S) to
    (N, C_out, *S') or (C_out, *S'), S' as torch computes it.

    Example:
        >>> import torch
        >>> from fblitz.random import sample_eps
        >>> layer = conv{dims}d(2, 4, 3, padding="same")
        >>> params = layer.init(0)
        >>> layer.apply(params, torch.ones(5, 2, {spatial}), sample_eps(1, params)).shape
        torch.Size([5, 4, {spatial}])
    """


def _conv_constructor(dims: int, rho_init: float):
    def conv(
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        *,
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        bayes: Bayes | None = None,
    ) -> Layer:
        in_channels, out_channels, groups = check_channels(in_channels, out_channels, groups)
        spec = conv_spec(dims, kernel_size, stride, padding, dilation, groups, padding_mode)
        args = bayes_from(bayes, rho_init=rho_init)
        weight_shape = (out_channels, in_channels // groups, *spec.kernel_size)
        return conv_layer(f"conv{dims}d", in_channels, out_channels, weight_shape, bias, spec, args)

    conv.__name__ = conv.__qualname__ = f"conv{dims}d"
    conv.__doc__ = _DOC.format(dims=dims, rho=rho_init, spatial=", ".join(["6"] * dims))
    return takes_bayes(conv)


conv1d = _conv_constructor(1, -7.0)
conv2d = _conv_constructor(2, -6.0)
conv3d = _conv_constructor(3, -6.0)

"""``BayesianConv1d/2d/3d`` (BLiTZ's names and arguments) on :func:`fblitz.layers.conv1d` and friends."""

from __future__ import annotations

import torch

from fblitz import _checks, layers
from fblitz.compat._module import GaussianModule
from fblitz.compat.modules._setup import blitz_arguments

_CONSTRUCTORS = {1: layers.conv1d, 2: layers.conv2d, 3: layers.conv3d}


class _BayesianConv(GaussianModule):
    """The shared body of the three convolutions (BLiTZ's argument order: groups before stride)."""

    dims = 0

    def _build(self, in_channels, out_channels, kernel_size, groups, stride, padding, dilation, bias, prior_args):
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.groups, self.stride, self.padding, self.dilation, self.bias = groups, stride, padding, dilation, bias
        names = ("weight", "bias") if bias else ("weight",)
        self._ignored_keys = () if bias else ("bias_zero",)  # BLiTZ's zero-bias buffer
        kwargs = blitz_arguments(self, names, *prior_args)
        self._set_layer(
            _CONSTRUCTORS[self.dims],
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
            groups=groups, bias=_checks.boolean("bias", bias), **kwargs,
        )  # fmt: skip
        self._register(self._layer.init(self.next_key(), dtype=torch.get_default_dtype()))

    def _blitz_placeholders(self, like):
        return {} if self.bias else {"bias_zero": like.new_zeros(self.out_channels)}  # BLiTZ's zero-bias buffer

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, groups={self.groups}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, bias={self.bias}"
        )


class BayesianConv1d(_BayesianConv):
    """A Bayesian ``nn.Conv1d`` with BLiTZ's arguments and defaults (rho starts at -7).

    ``kernel_size``, ``stride``, ``padding``, ``dilation``: an int or a 1-tuple.
    Parameters ``weight_mu``/``weight_rho`` (out, in / groups, k) and
    ``bias_mu``/``bias_rho`` (out,); ``seed`` as in :class:`BayesianLinear`.

    Example:
        >>> import torch
        >>> BayesianConv1d(2, 4, 3, seed=0)(torch.ones(5, 2, 8)).shape
        torch.Size([5, 4, 6])
    """

    dims = 1

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        groups=1,
        stride=1,
        padding=0,
        dilation=1,
        bias=True,
        prior_sigma_1=0.1,
        prior_sigma_2=0.002,
        prior_pi=1,
        posterior_mu_init=0,
        posterior_rho_init=-7.0,
        freeze=False,
        prior_dist=None,
        *,
        seed=None,
    ):
        super().__init__(freeze, seed)
        prior_args = (prior_sigma_1, prior_sigma_2, prior_pi, posterior_mu_init, posterior_rho_init, prior_dist)
        self._build(in_channels, out_channels, kernel_size, groups, stride, padding, dilation, bias, prior_args)


class BayesianConv2d(_BayesianConv):
    """A Bayesian ``nn.Conv2d`` with BLiTZ's arguments and defaults (rho starts at -6).

    ``kernel_size`` may be an int or a pair (BLiTZ needs a pair).

    Example:
        >>> import torch
        >>> BayesianConv2d(2, 4, (3, 3), padding=1, seed=0)(torch.ones(5, 2, 6, 6)).shape
        torch.Size([5, 4, 6, 6])
    """

    dims = 2

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        groups=1,
        stride=1,
        padding=0,
        dilation=1,
        bias=True,
        prior_sigma_1=0.1,
        prior_sigma_2=0.002,
        prior_pi=1,
        posterior_mu_init=0,
        posterior_rho_init=-6.0,
        freeze=False,
        prior_dist=None,
        *,
        seed=None,
    ):
        super().__init__(freeze, seed)
        prior_args = (prior_sigma_1, prior_sigma_2, prior_pi, posterior_mu_init, posterior_rho_init, prior_dist)
        self._build(in_channels, out_channels, kernel_size, groups, stride, padding, dilation, bias, prior_args)


class BayesianConv3d(_BayesianConv):
    """A Bayesian ``nn.Conv3d`` with BLiTZ's arguments and defaults (rho starts at -6).

    Example:
        >>> import torch
        >>> BayesianConv3d(1, 2, (1, 2, 2), seed=0)(torch.ones(3, 1, 2, 4, 4)).shape
        torch.Size([3, 2, 2, 3, 3])
    """

    dims = 3

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        groups=1,
        stride=1,
        padding=0,
        dilation=1,
        bias=True,
        prior_sigma_1=0.1,
        prior_sigma_2=0.002,
        prior_pi=1,
        posterior_mu_init=0,
        posterior_rho_init=-6.0,
        freeze=False,
        prior_dist=None,
        *,
        seed=None,
    ):
        super().__init__(freeze, seed)
        prior_args = (prior_sigma_1, prior_sigma_2, prior_pi, posterior_mu_init, posterior_rho_init, prior_dist)
        self._build(in_channels, out_channels, kernel_size, groups, stride, padding, dilation, bias, prior_args)

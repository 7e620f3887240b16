"""Bayesian LSTM, GRU and vanilla RNN layers (stacked, optionally bidirectional), torch's conventions.

The params tree uses ``torch.nn.LSTM``/``nn.GRU``/``nn.RNN`` names, one Gaussian node per
tensor, so a model with zero noise loaded into torch's module computes the same
outputs (for the means ``m``: ``getattr(module, name).copy_(m[name])``)::

    {"weight_ih_l0": {"mu": (G*H, H_in), "rho": ...}, "weight_hh_l0": (G*H, H),
     "bias_ih_l0": (G*H,), "bias_hh_l0": (G*H,),       # absent when bias=False
     "weight_ih_l0_reverse": ..., "weight_ih_l1": (G*H, D*H), ...}

with G = 4 for LSTM (gates i, f, g, o), 3 for GRU (r, z, n) and 1 for RNN, D = 2 when
bidirectional. The cell math lives in :mod:`fblitz.layers.cells`, the shared
builder in :mod:`fblitz.layers._recurrent`.
"""

from __future__ import annotations

from fblitz import _checks
from fblitz.layers._recurrent import build_recurrent
from fblitz.layers.base import Layer
from fblitz.priors import Prior

_DOC_ARGS = """
    Args:
        input_size, hidden_size: features of the input and of the hidden state.
        num_layers: stacked recurrent layers (no dropout between them).
        bias: learn ``bias_ih``/``bias_hh`` (torch's two biases per layer).
        batch_first: inputs and outputs are (N, L, ...) instead of (L, N, ...);
            the states keep torch's (num_layers * D, N, H) either way.
        bidirectional: add a reverse-direction layer (``..._reverse`` params);
            outputs concatenate both directions, D = 2.
        prior_sigma_1, prior_sigma_2, prior_pi, posterior_mu_init,
            posterior_rho_init, freeze, prior: BLiTZ's arguments and defaults
            for its recurrent layers (sigma_2 = 0.002, rho_init = -6), as in
            :func:`fblitz.layers.linear`; mu starts at N(posterior_mu_init, 0.1^2).
        estimator: ``"reparameterization"`` or ``"flipout"`` (per-example
            sign flips of one shared perturbation of each weight matrix, the
            signs fixed along the sequence; see :mod:`fblitz.estimators`).
            Local reparameterization does not apply: the same weights act at
            every time step.
        posterior: ``"gaussian"`` or ``"radial"`` (each weight tensor drawn
            from the radial posterior, :mod:`fblitz.radial`; with either
            estimator, Monte Carlo KL).

    ``apply(params, x, eps=None, state=None)`` takes ``x`` of shape (L, N, H_in),
    (N, L, H_in) with ``batch_first``, or unbatched (L, H_in). The weights are
    sampled ONCE per call from ``eps`` and shared by every time step (Blundell
    et al.; BLiTZ does the same); ``eps=None`` uses the means.
"""


def lstm(
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    bias: bool = True,
    batch_first: bool = False,
    bidirectional: bool = False,
    peephole: bool = False,
    prior_sigma_1: float = 0.1,
    prior_sigma_2: float = 0.002,
    prior_pi: float = 1.0,
    posterior_mu_init: float = 0.0,
    posterior_rho_init: float = -6.0,
    freeze: bool = False,
    prior: Prior | None = None,
    posterior_mu_std: float = 0.1,
    posterior_rho_std: float = 0.1,
    estimator: str = "reparameterization",
    posterior: str = "gaussian",
) -> Layer:
    """A Bayesian LSTM with ``torch.nn.LSTM``'s arguments, layout and return values.

    ``apply`` returns ``(output, (h_n, c_n))``: output (L, N, D * H) (or
    batch-first, or (L, D * H) unbatched) and h_n, c_n (num_layers * D, N, H)
    (or (num_layers * D, H) unbatched); ``state`` is an optional ``(h0, c0)``
    of those shapes. ``peephole=True`` gives BLiTZ's peephole variant (see
    :func:`fblitz.layers.cells.peephole_step`), which has no torch counterpart.
    """
    options = dict(locals())
    return build_recurrent(
        "peephole" if _checks.boolean("peephole", peephole) else "lstm", input_size, hidden_size, options
    )


def gru(
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    bias: bool = True,
    batch_first: bool = False,
    bidirectional: bool = False,
    prior_sigma_1: float = 0.1,
    prior_sigma_2: float = 0.002,
    prior_pi: float = 1.0,
    posterior_mu_init: float = 0.0,
    posterior_rho_init: float = -6.0,
    freeze: bool = False,
    prior: Prior | None = None,
    posterior_mu_std: float = 0.1,
    posterior_rho_std: float = 0.1,
    estimator: str = "reparameterization",
    posterior: str = "gaussian",
) -> Layer:
    """A Bayesian GRU with ``torch.nn.GRU``'s arguments, layout and return values.

    ``apply`` returns ``(output, h_n)`` with torch's shapes (see :func:`lstm`);
    ``state`` is an optional ``h0`` of h_n's shape.
    """
    return build_recurrent("gru", input_size, hidden_size, dict(locals()))


def rnn(
    input_size: int,
    hidden_size: int,
    *,
    nonlinearity: str = "tanh",
    num_layers: int = 1,
    bias: bool = True,
    batch_first: bool = False,
    bidirectional: bool = False,
    prior_sigma_1: float = 0.1,
    prior_sigma_2: float = 0.002,
    prior_pi: float = 1.0,
    posterior_mu_init: float = 0.0,
    posterior_rho_init: float = -6.0,
    freeze: bool = False,
    prior: Prior | None = None,
    posterior_mu_std: float = 0.1,
    posterior_rho_std: float = 0.1,
    estimator: str = "reparameterization",
    posterior: str = "gaussian",
) -> Layer:
    """A Bayesian vanilla (Elman) RNN with ``torch.nn.RNN``'s arguments, layout and return values.

    Each step computes ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
    with ``act`` = ``tanh`` or ``relu`` (``nonlinearity``). ``apply`` returns
    ``(output, h_n)``: output (L, N, D * H) (or batch-first, or (L, D * H)
    unbatched) and h_n (num_layers * D, N, H) (or (num_layers * D, H)
    unbatched); ``state`` is an optional ``h0`` of h_n's shape. BLiTZ has no
    Bayesian vanilla RNN; the prior/posterior defaults are those of its LSTM/GRU.
    """
    nonlinearity = _checks.one_of("nonlinearity", nonlinearity, ("tanh", "relu"))
    return build_recurrent(f"rnn_{nonlinearity}", input_size, hidden_size, dict(locals()))


_EXAMPLE = """
    Example:
        >>> import torch
        >>> from fblitz.random import sample_eps
        >>> layer = {name}(3, 5, num_layers=2, bidirectional=True)
        >>> params = layer.init(0)
        >>> output, _ = layer.apply(params, torch.ones(7, 4, 3), sample_eps(1, params))
        >>> output.shape
        torch.Size([7, 4, 10])
"""
lstm.__doc__ += _DOC_ARGS + _EXAMPLE.format(name="lstm")
gru.__doc__ += _DOC_ARGS + _EXAMPLE.format(name="gru")
_NONLINEARITY_ARG = """
        nonlinearity: ``"tanh"`` (torch's default) or ``"relu"``; anything else
            raises :class:`~fblitz.errors.FblitzValueError`."""
rnn.__doc__ += _DOC_ARGS.replace("    Args:", "    Args:" + _NONLINEARITY_ARG, 1) + _EXAMPLE.format(name="rnn")

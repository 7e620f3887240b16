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
from fblitz.layers.settings import Bayes, takes_bayes

_DOC_ARGS = """
    Args:
        input_size, hidden_size: features of the input and of the hidden state.
        num_layers: stacked recurrent layers (no dropout between them).
        bias: learn ``bias_ih``/``bias_hh`` (torch's two biases per layer).
        batch_first: inputs and outputs are (N, L, ...) instead of (L, N, ...);
            the states keep torch's (num_layers * D, N, H) either way.
        bidirectional: add a reverse-direction layer (``..._reverse`` params);
            outputs concatenate both directions, D = 2.
        bayes: a :class:`~fblitz.layers.Bayes` (None for the defaults): the
            prior, posterior init, posterior family, estimator and ``freeze``,
            with BLiTZ's defaults for its recurrent layers (prior N(0, 0.1^2),
            mu ~ N(0, 0.1^2), rho ~ N(-6, 0.1^2)). The estimator is
            ``"reparameterization"`` or ``"flipout"`` (per-example sign flips
            of one shared perturbation of each weight matrix, the signs fixed
            along the sequence; see :mod:`fblitz.variational.estimators`); local
            reparameterization does not apply, as the same weights act at
            every time step. ``posterior="radial"`` draws each weight tensor
            from the radial posterior (:mod:`fblitz.variational.radial`; either
            estimator, Monte Carlo KL).

    ``apply(params, x, eps=None, state=None)`` takes ``x`` of shape (L, N, H_in),
    (N, L, H_in) with ``batch_first``, or unbatched (L, H_in). The weights are
    sampled ONCE per call from ``eps`` and shared by every time step (Blundell
    et al.; BLiTZ does the same); ``eps=None`` uses the means.
"""


@takes_bayes
def lstm(
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    bias: bool = True,
    batch_first: bool = False,
    bidirectional: bool = False,
    peephole: bool = False,
    bayes: Bayes | None = None,
) -> Layer:
    """A Bayesian LSTM with ``torch.nn.LSTM``'s arguments, layout and return values.

    ``apply`` returns ``(output, (h_n, c_n))``: output (L, N, D * H) (or
    batch-first, or (L, D * H) unbatched) and h_n, c_n (num_layers * D, N, H)
    (or (num_layers * D, H) unbatched); ``state`` is an optional ``(h0, c0)``
    of those shapes. ``peephole=True`` gives BLiTZ's peephole variant (see
    :func:`fblitz.layers.cells.peephole_step`), which has no torch counterpart.
    """
    kind = "peephole" if _checks.boolean("peephole", peephole) else "lstm"
    return build_recurrent(kind, input_size, hidden_size, num_layers, bias, batch_first, bidirectional, bayes)


@takes_bayes
def gru(
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    bias: bool = True,
    batch_first: bool = False,
    bidirectional: bool = False,
    bayes: Bayes | None = None,
) -> Layer:
    """A Bayesian GRU with ``torch.nn.GRU``'s arguments, layout and return values.

    ``apply`` returns ``(output, h_n)`` with torch's shapes (see :func:`lstm`);
    ``state`` is an optional ``h0`` of h_n's shape.
    """
    return build_recurrent("gru", input_size, hidden_size, num_layers, bias, batch_first, bidirectional, bayes)


@takes_bayes
def rnn(
    input_size: int,
    hidden_size: int,
    *,
    nonlinearity: str = "tanh",
    num_layers: int = 1,
    bias: bool = True,
    batch_first: bool = False,
    bidirectional: bool = False,
    bayes: Bayes | None = None,
) -> Layer:
    """A Bayesian vanilla (Elman) RNN with ``torch.nn.RNN``'s arguments, layout and return values.

    Each step computes ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
    with ``act`` = ``tanh`` or ``relu`` (``nonlinearity``). ``apply`` returns
    ``(output, h_n)``: output (L, N, D * H) (or batch-first, or (L, D * H)
    unbatched) and h_n (num_layers * D, N, H) (or (num_layers * D, H)
    unbatched); ``state`` is an optional ``h0`` of h_n's shape. BLiTZ has no
    Bayesian vanilla RNN; the prior/posterior defaults are those of its LSTM/GRU.
    """
    kind = f"rnn_{_checks.one_of('nonlinearity', nonlinearity, ('tanh', 'relu'))}"
    return build_recurrent(kind, input_size, hidden_size, num_layers, bias, batch_first, bidirectional, bayes)


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

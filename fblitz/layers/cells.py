"""Recurrent cell math written from plain ops (internal to :mod:`fblitz.layers.recurrent`).

torch's fused kernels (``aten::lstm``, ``aten::gru``, ``aten::lstm_cell``)
have no ``vmap`` batching rule, so the cells are spelled out with
``F.linear``, ``sigmoid`` and ``tanh``, which ``torch.func.vmap`` and
``torch.func.grad`` handle. Gate order and parameter layout are torch's
(LSTM: input, forget, cell, output; GRU: reset, update, new; the vanilla
RNN has one block).

Every step function receives the weights of one layer and direction as a
:class:`CellWeights` argument and every matrix product goes through the
``linear(x, weight, bias)`` callable it is given (``F.linear`` by default).
An estimator that perturbs activations instead of weights (Flipout, local
reparameterization) can therefore reuse the cell math by passing its own
projection, without touching the gates.

Example:
    >>> import torch
    >>> w = CellWeights(torch.zeros(8, 3), torch.zeros(8, 2), None, None)
    >>> out, (h, c) = scan(lstm_step, w, torch.ones(5, 4, 3), (torch.zeros(4, 2), torch.zeros(4, 2)))
    >>> tuple(out.shape), tuple(h.shape)
    ((5, 4, 2), (4, 2))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz import seeded

Linear = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


class CellWeights(NamedTuple):
    """The (sampled) weights of one layer and direction, in torch's layout.

    Attributes:
        w_ih: (G * H, H_in) input-to-hidden weights, G = 4 (LSTM), 3 (GRU) or 1 (RNN).
        w_hh: (G * H, H) hidden-to-hidden weights (cell-to-hidden with peepholes).
        b_ih: (G * H,) input bias, or None.
        b_hh: (G * H,) hidden bias, or None.
    """

    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None


def lstm_step(gx: torch.Tensor, state: tuple, w: CellWeights, linear: Linear = F.linear):
    """One LSTM step, as ``torch.nn.LSTM``.

    ``gx`` (N, 4H) is the input pre-activation ``x_t W_ih^T + b_ih``;
    ``state`` is ``(h, c)``, each (N, H). Returns ``(h_t, (h_t, c_t))``.
    """
    h, c = state
    i, f, g, o = (gx + linear(h, w.w_hh, w.b_hh)).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, (h, c)


def peephole_step(gx: torch.Tensor, state: tuple, w: CellWeights, linear: Linear = F.linear):
    """One step of BLiTZ's ``peephole=True`` LSTM variant (not a Gers-Schmidhuber peephole).

    With ``a = x_t W_ih^T + b_ih + b_hh`` (``gx`` plus the hidden bias) and
    ``p = c_{t-1} W_hh^T`` (the gates look at the previous *cell* state, not
    at ``h``), split into the four gate slices i, f, g, o::

        i, f, o = sigmoid(a_i + p_i), sigmoid(a_f + p_f), sigmoid(a_o + p_o)
        c_t = f * c_{t-1} + i * sigmoid(a_g)        # candidate from the input only
        h_t = tanh(o * c_t)

    ``h_{t-1}`` is carried but unused. BLiTZ's frozen (mean-weight) path uses
    ``sigmoid(o * c_t)`` for ``h_t`` instead; fblitz uses ``tanh`` in both modes,
    as BLiTZ's sampling path does.
    """
    _, c = state
    a = gx if w.b_hh is None else gx + w.b_hh
    i, f, g, o = (a + linear(c, w.w_hh, None)).chunk(4, dim=-1)
    hidden = c.shape[-1]
    candidate = a[..., 2 * hidden : 3 * hidden]
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.sigmoid(candidate)
    h = torch.tanh(torch.sigmoid(o) * c)
    return h, (h, c)


def gru_step(gx: torch.Tensor, h: torch.Tensor, w: CellWeights, linear: Linear = F.linear):
    """One GRU step, as ``torch.nn.GRU``.

    ``gx`` (N, 3H) is ``x_t W_ih^T + b_ih``; ``h`` is (N, H)::

        r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z), gh = h W_hh^T + b_hh
        n = tanh(gx_n + r * gh_n),  h_t = (1 - z) * n + z * h

    Returns ``(h_t, h_t)``.
    """
    xr, xz, xn = gx.chunk(3, dim=-1)
    hr, hz, hn = linear(h, w.w_hh, w.b_hh).chunk(3, dim=-1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    h = n + z * (h - n)
    return h, h


def rnn_tanh_step(gx: torch.Tensor, h: torch.Tensor, w: CellWeights, linear: Linear = F.linear):
    """One step of ``torch.nn.RNN(nonlinearity="tanh")``: ``h_t = tanh(gx + h W_hh^T + b_hh)``.

    ``gx`` (N, H) is ``x_t W_ih^T + b_ih``; ``h`` is (N, H). Returns ``(h_t, h_t)``.
    """
    h = torch.tanh(gx + linear(h, w.w_hh, w.b_hh))
    return h, h


def rnn_relu_step(gx: torch.Tensor, h: torch.Tensor, w: CellWeights, linear: Linear = F.linear):
    """One step of ``torch.nn.RNN(nonlinearity="relu")``: ``h_t = relu(gx + h W_hh^T + b_hh)``."""
    h = torch.relu(gx + linear(h, w.w_hh, w.b_hh))
    return h, h


class FlipoutWeight(NamedTuple):
    """A weight matrix under Flipout: its mean, one shared perturbation and a sign seed.

    Attributes:
        mean: (rows, cols) posterior mean.
        delta: (rows, cols) ``sigma * eps``, shared by every example.
        seed: 0-dim int64; sign streams 0 (inputs) and 1 (outputs) come from it.
    """

    mean: torch.Tensor
    delta: torch.Tensor
    seed: torch.Tensor


def flipout_linear(x: torch.Tensor, weight, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear``, or Flipout's ``x mean^T + b + ((x * s_in) delta^T) * s_out`` for a :class:`FlipoutWeight`.

    The signs are drawn per example and feature (shape ``x.shape[-2:]``, i.e.
    (N, features)) and broadcast over time, so one sequence keeps one
    implicit weight draw at every step.
    """
    if not isinstance(weight, FlipoutWeight):
        return F.linear(x, weight, bias)
    s_in = seeded.rademacher(seeded.stream(weight.seed, 0), x.shape[-2:], dtype=x.dtype, device=x.device)
    out = F.linear(x, weight.mean, bias)
    s_out = seeded.rademacher(seeded.stream(weight.seed, 1), out.shape[-2:], dtype=out.dtype, device=out.device)
    return out + F.linear(x * s_in, weight.delta) * s_out


def scan(step: Callable, w: CellWeights, xs: torch.Tensor, state, *, reverse: bool = False, linear: Linear = F.linear):
    """Run ``step`` over the time axis 0 of ``xs`` (L, N, H_in) with fixed weights ``w``.

    The input projection of all L steps is one matrix product; the recurrence
    is a Python loop of L steps. With ``reverse=True`` the sequence is read
    from its end (the backward direction), and the outputs are returned in
    the original time order.

    Returns:
        ``(outputs, final_state)`` with outputs (L, N, H).
    """
    gx = linear(xs, w.w_ih, w.b_ih)
    steps = range(xs.shape[0] - 1, -1, -1) if reverse else range(xs.shape[0])
    outputs = []
    for t in steps:
        out, state = step(gx[t], state, w, linear)
        outputs.append(out)
    if reverse:
        outputs.reverse()
    return torch.stack(outputs), state

"""``BayesianGRU`` (BLiTZ's name, arguments and layout) on :func:`fblitz.layers.gru`."""

from __future__ import annotations

from fblitz.compat.modules.base_bayesian_module import BayesianRNN, rnn_init


class BayesianGRU(BayesianRNN):
    """A Bayesian one-layer GRU with BLiTZ's arguments, defaults, layout and return values.

    ``forward(x, hidden_states=None)``: ``x`` (batch, seq, in_features) ->
    ``(hidden_seq (batch, seq, H), h_t (batch, H))``; ``hidden_states`` is an
    optional ``h_0`` (batch, H). The gates are torch's ``nn.GRU``'s (BLiTZ's
    GRU computes the same function of its weights; see
    :mod:`fblitz.compat.modules.base_bayesian_module` for the layout).

    Example:
        >>> import torch
        >>> out, h = BayesianGRU(3, 5, seed=0)(torch.ones(2, 7, 3))
        >>> out.shape, h.shape
        (torch.Size([2, 7, 5]), torch.Size([2, 5]))
    """

    kind = "gru"

    __init__ = rnn_init()

    def forward(self, x, hidden_states=None, sharpen_loss=None):
        return super().forward(x, hidden_states, sharpen_loss)

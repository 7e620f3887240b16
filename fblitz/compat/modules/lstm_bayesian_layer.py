"""``BayesianLSTM`` (BLiTZ's name, arguments and layout) on :func:`fblitz.layers.lstm`."""

from __future__ import annotations

from fblitz.compat.modules.base_bayesian_module import BayesianRNN, rnn_init


class BayesianLSTM(BayesianRNN):
    """A Bayesian one-layer LSTM with BLiTZ's arguments, defaults, layout and return values.

    ``forward(x, hidden_states=None)``: ``x`` (batch, seq, in_features) ->
    ``(hidden_seq (batch, seq, H), (h_t, c_t))`` with ``h_t, c_t`` (batch, H);
    ``hidden_states`` is an optional ``(h_0, c_0)`` of those shapes. The weights
    are drawn once per call. ``peephole=True`` is BLiTZ's variant (its sampling
    path; BLiTZ's frozen path uses ``sigmoid`` where the sampling path uses
    ``tanh``, here both use ``tanh``). ``sharpen`` (in ``kwargs``, as BLiTZ)
    adds the sharpening steps; ``seed`` as in :class:`BayesianLinear`.

    Example:
        >>> import torch
        >>> out, (h, c) = BayesianLSTM(3, 5, seed=0)(torch.ones(2, 7, 3))
        >>> out.shape, h.shape
        (torch.Size([2, 7, 5]), torch.Size([2, 5]))
    """

    kind = "lstm"

    __init__ = rnn_init(("peephole", False))

    def forward(self, x, hidden_states=None, sharpen_loss=None):
        return super().forward(x, hidden_states, sharpen_loss)

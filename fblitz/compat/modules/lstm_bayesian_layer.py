"""``BayesianLSTM`` (BLiTZ's name, arguments and layout) on :func:`fblitz.layers.lstm`."""

from __future__ import annotations

from fblitz import _checks
from fblitz.compat.modules.base_bayesian_module import BayesianRNN


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

    def __init__(
        self,
        in_features,
        out_features,
        bias=True,
        prior_sigma_1=0.1,
        prior_sigma_2=0.002,
        prior_pi=1,
        posterior_mu_init=0,
        posterior_rho_init=-6.0,
        freeze=False,
        prior_dist=None,
        peephole=False,
        **kwargs,
    ):
        super().__init__(freeze=freeze, **kwargs)
        self.peephole = peephole
        prior_args = (prior_sigma_1, prior_sigma_2, prior_pi, posterior_mu_init, posterior_rho_init, prior_dist)
        self._build(in_features, out_features, bias, prior_args, peephole=_checks.boolean("peephole", peephole))

    def forward(self, x, hidden_states=None, sharpen_loss=None):
        return super().forward(x, hidden_states, sharpen_loss)

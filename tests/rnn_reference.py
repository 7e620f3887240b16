"""References for the recurrent layers: torch's ``nn.LSTM``/``nn.GRU``/``nn.RNN`` loaded with the
means, and BLiTZ's peephole LSTM written out as a plain loop (it has no torch counterpart)."""

from __future__ import annotations

import torch
import torch.nn as nn

_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def torch_rnn(kind: str, input_size: int, hidden_size: int, **kwargs):
    """``(means, x, *state) -> torch's output`` for an ``nn.LSTM``/``nn.GRU``/``nn.RNN`` holding ``means``."""

    def reference(means, x, *state):
        with torch.random.fork_rng():  # torch's init reads the global RNG
            module = _MODULES[kind](input_size, hidden_size, dtype=x.dtype, **kwargs)
        assert dict(module.named_parameters()).keys() == means.keys()
        with torch.no_grad():
            for name, value in means.items():
                getattr(module, name).copy_(value)
            return module(x, *state)

    return reference


def peephole_loop(means, x, state=None):
    """BLiTZ's ``peephole=True`` LSTM (its sampling path), one layer, time-major x (L, N, H_in).

    Written in BLiTZ's own form: ``W = W_ih^T``, ``U = W_hh^T`` and one bias
    ``b = b_ih + b_hh``; the gates see the previous cell state, the candidate
    is ``sigmoid`` of the input part only, and ``h = tanh(o * c)``.
    """
    w, u = means["weight_ih_l0"].T, means["weight_hh_l0"].T
    b = means["bias_ih_l0"] + means["bias_hh_l0"] if "bias_ih_l0" in means else 0.0
    hs = u.shape[0]
    if state is None:
        h = c = x.new_zeros(x.shape[1], hs)
    else:
        h, c = state[0][0], state[1][0]
    outputs = []
    for t in range(x.shape[0]):
        from_input = x[t] @ w + b
        gates = from_input + c @ u
        i, f, o = torch.sigmoid(gates[:, :hs]), torch.sigmoid(gates[:, hs : 2 * hs]), torch.sigmoid(gates[:, 3 * hs :])
        c = f * c + i * torch.sigmoid(from_input[:, 2 * hs : 3 * hs])
        h = torch.tanh(o * c)
        outputs.append(h)
    return torch.stack(outputs), (h.unsqueeze(0), c.unsqueeze(0))

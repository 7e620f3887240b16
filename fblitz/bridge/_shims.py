"""Stand-ins for the torch modules that ``vmap`` cannot run or that mutate buffers (internal).

:func:`prepare` deep-copies a module and swaps, inside the copy only:

* ``nn.BatchNorm1d/2d/3d`` for :class:`BatchNormShim`, which runs fblitz's
  functional batch norm (:mod:`fblitz.layers.normalization`) and *reports*
  updated running statistics instead of writing them in place (an in-place
  update of an unbatched buffer with per-sample values fails under ``vmap``);
* ``nn.LSTM``/``nn.GRU``/``nn.RNN`` for :class:`RecurrentShim`, which runs
  fblitz's recurrent layers (:mod:`fblitz.layers.recurrent`; ``aten::lstm``,
  ``gru`` and ``rnn_tanh``/``rnn_relu`` have no batching rule), and
  ``nn.LSTMCell``/``nn.GRUCell``/``nn.RNNCell`` for :class:`CellShim` (the step
  functions of :mod:`fblitz.layers.cells`; ``aten::lstm_cell`` fails under
  ``vmap``, and ``gru_cell``/``rnn_tanh_cell``/``rnn_relu_cell`` fall back to a
  slow per-sample loop with a warning).

Each stand-in registers the *same* parameter and buffer names as the module it
replaces, so ``torch.func.functional_call`` substitutes tensors by the
original dotted names. How batch norm behaves during one call is set by
:func:`calling` (a context variable, so nothing is stored on the modules).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers.cells import CellWeights, gru_step, lstm_step, rnn_relu_step, rnn_tanh_step
from fblitz.layers.normalization import batch_norm1d, batch_norm2d, batch_norm3d
from fblitz.layers.recurrent import gru, lstm, rnn


class CallMode(NamedTuple):
    """How batch norm runs in one call.

    ``train``: None normalises with the batch's statistics and keeps no state
    (the plain ``apply``), True also reports updated running statistics in
    ``updates`` (module path -> new state), False uses the running statistics.
    """

    train: bool | None
    updates: dict


_MODE: contextvars.ContextVar[CallMode | None] = contextvars.ContextVar("fblitz_bridge_mode", default=None)


@contextlib.contextmanager
def calling(mode: CallMode):
    """Run the block with ``mode`` for batch norm, torch's MHA fast path off and SDPA's math kernel.

    Eval-mode attention otherwise takes fused kernels with no derivative or
    batching rule; both global switches are restored afterwards.
    """
    token = _MODE.set(mode)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        _MODE.reset(token)


_BATCH_NORMS = {nn.BatchNorm1d: batch_norm1d, nn.BatchNorm2d: batch_norm2d, nn.BatchNorm3d: batch_norm3d}
STATE_NAMES = ("running_mean", "running_var", "num_batches_tracked")


class BatchNormShim(nn.Module):
    """``nn.BatchNorm*d`` without in-place updates; ``path`` keys its reported state."""

    def __init__(self, original: nn.Module, path: str):
        super().__init__()
        make = _BATCH_NORMS[type(original)]
        self.layer = make(
            original.num_features, original.eps, original.momentum, original.affine, original.track_running_stats
        )
        self.path, self.affine, self.tracks = path, original.affine, original.track_running_stats
        if self.affine:
            self.weight, self.bias = original.weight, original.bias
        if self.tracks:
            for name in STATE_NAMES:
                self.register_buffer(name, getattr(original, name))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        params = {"weight": self.weight, "bias": self.bias} if self.affine else {}
        mode = _MODE.get()
        if mode is None or mode.train is None or not self.tracks:
            return self.layer.forward(params, x)
        state = {name: getattr(self, name) for name in STATE_NAMES}
        y, new_state = self.layer.state.apply(params, state, x, None, mode.train)
        if mode.train:
            mode.updates[self.path] = new_state
        return y


_RECURRENT = {nn.LSTM: lstm, nn.GRU: gru, nn.RNN: rnn}


class RecurrentShim(nn.Module):
    """``nn.LSTM``/``nn.GRU``/``nn.RNN`` run by fblitz's recurrent layer (same gate order: i, f, g, o and r, z, n)."""

    def __init__(self, original: nn.Module):
        super().__init__()
        if getattr(original, "proj_size", 0):
            raise FblitzValueError(f"module: nn.LSTM with proj_size > 0 is not supported, got {original!r}")
        make = _RECURRENT[type(original)]
        options = {name: getattr(original, name) for name in ("num_layers", "bias", "batch_first", "bidirectional")}
        if isinstance(original, nn.RNN):
            options["nonlinearity"] = original.nonlinearity
        self.layer = make(original.input_size, original.hidden_size, **options)
        self.names = tuple(original._flat_weights_names)
        for name in self.names:
            self.register_parameter(name, getattr(original, name))

    def forward(self, input, hx=None):
        if isinstance(input, nn.utils.rnn.PackedSequence):
            raise FblitzTypeError("x: PackedSequence inputs are not supported by the bridge; pad the sequences")
        # eps=None makes fblitz's layer use each node's "mu": here, exactly the given tensors
        return self.layer.forward({name: {"mu": getattr(self, name)} for name in self.names}, input, None, hx)


def _cell_step(original: nn.Module):
    if isinstance(original, nn.LSTMCell):
        return lstm_step
    if isinstance(original, nn.GRUCell):
        return gru_step
    return rnn_relu_step if original.nonlinearity == "relu" else rnn_tanh_step


class CellShim(nn.Module):
    """``nn.LSTMCell``/``nn.GRUCell``/``nn.RNNCell`` by the step functions of :mod:`fblitz.layers.cells`."""

    def __init__(self, original: nn.Module):
        super().__init__()
        self.is_lstm, self.hidden_size = isinstance(original, nn.LSTMCell), original.hidden_size
        self.step = _cell_step(original)
        self.names = tuple(name for name, _ in original.named_parameters(recurse=False))
        for name in self.names:
            self.register_parameter(name, getattr(original, name))

    def forward(self, input: torch.Tensor, hx=None):
        weights = CellWeights(*(getattr(self, name, None) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        gx = F.linear(input, weights.w_ih, weights.b_ih)
        if hx is None:
            zeros = input.new_zeros(*input.shape[:-1], self.hidden_size)
            hx = (zeros, zeros) if self.is_lstm else zeros
        return self.step(gx, tuple(hx) if self.is_lstm else hx, weights)[1]


def _swap(module: nn.Module, path: str) -> nn.Module:
    """The stand-in for ``module`` (at dotted ``path``), or ``module`` itself."""
    if type(module) in _BATCH_NORMS:
        return BatchNormShim(module, path)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        raise FblitzTypeError(
            f"module: {type(module).__name__} at '{path or '<root>'}' is not supported (only BatchNorm1d/2d/3d)"
        )
    if type(module) in _RECURRENT:
        return RecurrentShim(module)
    if type(module) in (nn.LSTMCell, nn.GRUCell, nn.RNNCell):
        return CellShim(module)
    for name, child in list(module.named_children()):
        replacement = _swap(child, f"{path}.{name}" if path else name)
        if replacement is not child:
            setattr(module, name, replacement)
    return module


def prepare(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` in eval mode with the stand-ins swapped in (``module`` is untouched)."""
    return _swap(copy.deepcopy(module), "").eval()


def has_running_stats(module: nn.Module) -> list[str]:
    """The paths of the batch-norm stand-ins in ``module`` that keep running statistics."""
    return [m.path for m in module.modules() if isinstance(m, BatchNormShim) and m.tracks]

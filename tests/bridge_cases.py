"""The modules the bridge tests run through (tests/test_bridge*.py), built without the global RNG."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from fblitz.distributions import reparameterize
from fblitz.tree import is_gaussian
from tests.helpers import randn


def build(factory: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    """``factory()`` with torch's default init seeded by ``seed``, global RNG restored afterwards."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return factory()


class LastStep(nn.Module):
    """A recurrent module followed by a linear head on the last time step (batch-first)."""

    def __init__(self, recurrent: nn.Module, hidden: int):
        super().__init__()
        self.rnn, self.head = recurrent, nn.Linear(hidden, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


class Case(NamedTuple):
    """A module, an input, and the torch mode that matches the bridge's plain ``apply``."""

    name: str
    make: Callable[[], nn.Module]
    inputs: Callable[[], torch.Tensor]
    bayesian: object = "*"
    reference_train: bool = False  # batch norm: plain apply uses batch statistics, as torch in train mode


CASES = [
    Case(
        "mlp",
        lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)),
        lambda: randn(1, 5, 4),
        "*.weight",
    ),
    Case(
        "cnn",
        lambda: nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 2)),
        lambda: randn(2, 3, 1, 6, 6),
    ),
    Case(
        "cnn_batchnorm",
        lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2)),
        lambda: randn(3, 5, 1, 6, 6),
        ("0.*", "4.*"),
        True,
    ),
    Case(
        "transformer",
        lambda: nn.TransformerEncoderLayer(8, 2, 16, batch_first=True),
        lambda: randn(4, 3, 5, 8),
        lambda name, p: p.dim() == 2,
    ),
    Case(
        "lstm",
        lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True),
        lambda: randn(5, 6, 2, 3),
    ),
    Case(
        "gru",
        lambda: nn.GRU(3, 4, batch_first=True),
        lambda: randn(6, 2, 5, 3),
    ),
    Case(
        "rnn_relu",
        lambda: nn.RNN(3, 4, nonlinearity="relu", num_layers=2, bidirectional=True, batch_first=True),
        lambda: randn(10, 2, 5, 3),
    ),
    Case("rnn_head", lambda: LastStep(nn.RNN(3, 4, batch_first=True, bias=False), 4), lambda: randn(11, 4, 5, 3)),
    Case("lstm_cell", lambda: nn.LSTMCell(3, 4), lambda: randn(7, 2, 3)),
    Case("gru_cell", lambda: nn.GRUCell(3, 4), lambda: randn(8, 2, 3)),
    Case("rnn_cell", lambda: nn.RNNCell(3, 4), lambda: randn(12, 2, 3)),
    Case("rnn_cell_relu_unbatched", lambda: nn.RNNCell(3, 4, nonlinearity="relu", bias=False), lambda: randn(13, 3)),
    Case("lstm_head", lambda: LastStep(nn.LSTM(3, 4, batch_first=True), 4), lambda: randn(9, 4, 5, 3), "rnn.*"),
]
CASE_IDS = [case.name for case in CASES]


def drawn_weights(params: dict, eps: dict | None, prefix: str = "") -> dict:
    """Dotted name -> ``mu + softplus(rho) * eps`` (or the point estimate), written out independently."""
    out = {}
    for key, node in params.items():
        name = f"{prefix}{key}"
        if is_gaussian(node):
            out[name] = node["mu"] if eps is None else reparameterize(node["mu"], node["rho"], eps[key])
        elif isinstance(node, dict):
            out |= drawn_weights(node, None if eps is None else eps[key], f"{name}.")
        else:
            out[name] = node
    return out


def run_module(module: nn.Module, weights: dict, x, *, train: bool = False):
    """torch's own module (a copy) with ``weights``, outside vmap: the reference."""
    module = copy.deepcopy(module).train(train)
    return torch.func.functional_call(module, weights, (x,))

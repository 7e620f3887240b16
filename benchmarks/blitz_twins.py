"""BLiTZ versions of the benchmarked networks (BLiTZ is called, not copied).

Only imported when ``blitz`` is importable. BLiTZ draws its initial values and
its weight noise from the global torch RNG, so modules are built, and every
BLiTZ call is run, inside ``torch.random.fork_rng()`` (seeded there): the
caller's global RNG state is left as it was.
"""

from __future__ import annotations

import torch
from blitz.modules import BayesianConv2d, BayesianLinear, BayesianLSTM
from blitz.utils import variational_estimator
from torch import nn


@variational_estimator
class BlitzMLP(nn.Module):
    """Bayesian linear layers with ReLU between them, e.g. sizes (13, 512, 1)."""

    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(BayesianLinear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


@variational_estimator
class BlitzLeNet(nn.Module):
    """The LeNet of :func:`fblitz.models.lenet` for 8x8 inputs with padding 2 (conv rho -6)."""

    def __init__(self, classes=10, padding=2, flat=64):
        super().__init__()
        self.conv1 = BayesianConv2d(1, 6, (5, 5), padding=padding, posterior_rho_init=-6.0)
        self.conv2 = BayesianConv2d(6, 16, (5, 5), padding=padding, posterior_rho_init=-6.0)
        self.fc = nn.ModuleList([BayesianLinear(flat, 120), BayesianLinear(120, 84), BayesianLinear(84, classes)])

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2, 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2, 2).flatten(1)
        x = torch.relu(self.fc[0](x))
        return self.fc[2](torch.relu(self.fc[1](x)))


@variational_estimator
class BlitzLSTM(nn.Module):
    """BayesianLSTM(1, 16) (batch first) -> last step -> BayesianLinear(16, 1)."""

    def __init__(self, hidden=16):
        super().__init__()
        self.lstm = BayesianLSTM(1, hidden)
        self.head = BayesianLinear(hidden, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def build(net, seed: int = 0) -> nn.Module:
    """The BLiTZ twin of ``net`` (a :class:`benchmarks.cases.Net`), built without touching the global RNG."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if net.kind == "mlp":
            return BlitzMLP(net.sizes)
        if net.kind == "cnn":
            return BlitzLeNet(net.classes)
        return BlitzLSTM()


def criterion(net):
    """BLiTZ's examples' criteria: cross-entropy for classifiers, MSE for regression."""
    return nn.CrossEntropyLoss() if net.classes else nn.MSELoss()

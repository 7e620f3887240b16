"""BLiTZ-style versions of the benchmarked networks, on BLiTZ itself or on ``fblitz.compat``.

The same three ``nn.Module`` classes are built from either library's
``BayesianLinear``/``BayesianConv2d``/``BayesianLSTM`` and
``variational_estimator`` (BLiTZ is called, not copied; ``fblitz.compat``
has BLiTZ's names and signatures). BLiTZ draws its initial values and its
weight noise from the global torch RNG, so modules are built, and every
BLiTZ call is run, inside ``torch.random.fork_rng()`` (seeded there): the
caller's global RNG state is left as it was. ``fblitz.compat`` layers draw
one seed each from that (forked) RNG when built and never touch it after.
"""

from __future__ import annotations

import functools
import importlib

import torch
from torch import nn

LIBRARIES = {"blitz": ("blitz.modules", "blitz.utils"), "compat": ("fblitz.compat.modules", "fblitz.compat.utils")}


@functools.cache
def classes(library: str) -> dict:
    """``{"mlp", "cnn", "lstm"} -> nn.Module class`` built from ``library``'s modules (imported on first use)."""
    modules, utils = (importlib.import_module(name) for name in LIBRARIES[library])
    linear, conv2d, lstm = modules.BayesianLinear, modules.BayesianConv2d, modules.BayesianLSTM
    estimator = utils.variational_estimator

    @estimator
    class MLP(nn.Module):
        """Bayesian linear layers with ReLU between them, e.g. sizes (13, 512, 1)."""

        def __init__(self, sizes):
            super().__init__()
            self.layers = nn.ModuleList(linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

        def forward(self, x):
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i < len(self.layers) - 1:
                    x = torch.relu(x)
            return x

    @estimator
    class LeNet(nn.Module):
        """The LeNet of :func:`fblitz.models.lenet` for 8x8 inputs with padding 2 (conv rho -6)."""

        def __init__(self, classes=10, padding=2, flat=64):
            super().__init__()
            self.conv1 = conv2d(1, 6, (5, 5), padding=padding, posterior_rho_init=-6.0)
            self.conv2 = conv2d(6, 16, (5, 5), padding=padding, posterior_rho_init=-6.0)
            self.fc = nn.ModuleList([linear(flat, 120), linear(120, 84), linear(84, classes)])

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv1(x)), 2, 2)
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 2, 2).flatten(1)
            x = torch.relu(self.fc[0](x))
            return self.fc[2](torch.relu(self.fc[1](x)))

    @estimator
    class LSTM(nn.Module):
        """BayesianLSTM(1, 16) (batch first) -> last step -> BayesianLinear(16, 1)."""

        def __init__(self, hidden=16):
            super().__init__()
            self.lstm = lstm(1, hidden)
            self.head = linear(hidden, 1)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    return {"mlp": MLP, "cnn": LeNet, "lstm": LSTM}


def build(net, seed: int = 0, library: str = "blitz", device="cpu") -> nn.Module:
    """The twin of ``net`` (a :class:`benchmarks.cases.Net`) in ``library``, built without touching the global RNG."""
    cls = classes(library)[net.kind]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = cls(net.sizes) if net.kind == "mlp" else cls(net.classes) if net.kind == "cnn" else cls()
    return module.to(device)


def criterion(net):
    """BLiTZ's examples' criteria: cross-entropy for classifiers, MSE for regression."""
    return nn.CrossEntropyLoss() if net.classes else nn.MSELoss()

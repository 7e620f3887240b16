"""BLiTZ's Bayesian VGG zoo (``blitz.models.b_vgg``) from compat layers.

Same module tree and state-dict names as BLiTZ's (``features.0.weight_mu``,
``classifier.4.bias_rho``, ...), so its checkpoints load. The layer widths
are those of :data:`fblitz.models.vgg.VGG_CONFIGS`; the functional
counterpart is :func:`fblitz.models.vgg`. Inputs are 3 x 32 x 32.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from fblitz.compat.modules import BayesianConv2d, BayesianLinear
from fblitz.compat.utils import variational_estimator
from fblitz.models.vgg import VGG_CONFIGS
from fblitz.random import normal

__all__ = ["VGG", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19_bn", "vgg19"]

cfg = {letter: list(VGG_CONFIGS[depth]) for letter, depth in (("A", 11), ("B", 13), ("D", 16), ("E", 19))}


@variational_estimator
class VGG(nn.Module):
    """A Bayesian VGG: ``features`` then Bayesian linear 512 - 512 - ``out_nodes`` with ReLUs.

    As BLiTZ, the conv means start from He's N(0, 2 / (k_h k_w C_out)) and the
    conv bias means at zero (drawn from each conv's own key).
    """

    def __init__(self, features, out_nodes=10):
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(
            BayesianLinear(512, 512),
            nn.ReLU(True),
            BayesianLinear(512, 512),
            nn.ReLU(True),
            BayesianLinear(512, out_nodes),
        )
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, BayesianConv2d):
                    kernel = m.weight_mu.shape[2:]
                    std = math.sqrt(2.0 / (kernel[0] * kernel[1] * m.out_channels))
                    m.weight_mu.copy_(std * normal(m.next_key(), m.weight_mu.shape, dtype=m.weight_mu.dtype))
                    if m.bias:
                        m.bias_mu.zero_()

    def forward(self, x):
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


def make_layers(cfg, batch_norm=False):
    """The convolutional part for a configuration list (widths and ``"M"`` for 2 x 2 max pooling)."""
    layers, in_channels = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        conv2d = BayesianConv2d(in_channels, v, kernel_size=(3, 3), padding=1, bias=True)
        layers += [conv2d, nn.BatchNorm2d(v), nn.ReLU(inplace=True)] if batch_norm else [conv2d, nn.ReLU(inplace=True)]
        in_channels = v
    return nn.Sequential(*layers)


def vgg11():
    """VGG 11 (configuration "A")."""
    return VGG(make_layers(cfg["A"]))


def vgg11_bn():
    """VGG 11 (configuration "A") with batch normalisation."""
    return VGG(make_layers(cfg["A"], batch_norm=True))


def vgg13():
    """VGG 13 (configuration "B")."""
    return VGG(make_layers(cfg["B"]))


def vgg13_bn():
    """VGG 13 (configuration "B") with batch normalisation."""
    return VGG(make_layers(cfg["B"], batch_norm=True))


def vgg16():
    """VGG 16 (configuration "D")."""
    return VGG(make_layers(cfg["D"]))


def vgg16_bn():
    """VGG 16 (configuration "D") with batch normalisation."""
    return VGG(make_layers(cfg["D"], batch_norm=True))


def vgg19():
    """VGG 19 (configuration "E")."""
    return VGG(make_layers(cfg["E"]))


def vgg19_bn():
    """VGG 19 (configuration "E") with batch normalisation."""
    return VGG(make_layers(cfg["E"], batch_norm=True))

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


def _variant(depth: int, config: str, batch_norm: bool):
    """BLiTZ's ``vgg{depth}`` / ``vgg{depth}_bn``: a :class:`VGG` on configuration ``config``."""

    def variant():
        return VGG(make_layers(cfg[config], batch_norm=batch_norm))

    variant.__name__ = variant.__qualname__ = f"vgg{depth}{'_bn' if batch_norm else ''}"
    variant.__doc__ = f'VGG {depth} (configuration "{config}"){" with batch normalisation" if batch_norm else ""}.'
    return variant


vgg11, vgg11_bn = _variant(11, "A", False), _variant(11, "A", True)
vgg13, vgg13_bn = _variant(13, "B", False), _variant(13, "B", True)
vgg16, vgg16_bn = _variant(16, "D", False), _variant(16, "D", True)
vgg19, vgg19_bn = _variant(19, "E", False), _variant(19, "E", True)

"""Ready-made Bayesian networks: BLiTZ's model zoo rebuilt from fblitz layers."""

from fblitz.models.lenet import lenet
from fblitz.models.vgg import VGG_CONFIGS, vgg, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = [
    "VGG_CONFIGS",
    "lenet",
    "vgg",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]

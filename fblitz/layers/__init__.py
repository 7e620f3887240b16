"""Functional Bayesian layers and combinators."""

from fblitz.layers.base import Layer
from fblitz.layers.combinators import (
    elu,
    flatten,
    freeze,
    gelu,
    identity,
    relu,
    serial,
    sigmoid,
    silu,
    softplus,
    stateless,
    tanh,
)
from fblitz.layers.conv import conv1d, conv2d, conv3d
from fblitz.layers.conv_transpose import conv_transpose1d, conv_transpose2d, conv_transpose3d
from fblitz.layers.embedding import embedding
from fblitz.layers.linear import linear
from fblitz.layers.noise import learned_noise

__all__ = [
    "Layer",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "elu",
    "embedding",
    "flatten",
    "freeze",
    "gelu",
    "identity",
    "learned_noise",
    "linear",
    "relu",
    "serial",
    "sigmoid",
    "silu",
    "softplus",
    "stateless",
    "tanh",
]

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
from fblitz.layers.linear import linear
from fblitz.layers.noise import learned_noise

__all__ = [
    "Layer",
    "elu",
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

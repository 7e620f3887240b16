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
from fblitz.layers.recurrent import gru, lstm

__all__ = [
    "Layer",
    "elu",
    "flatten",
    "freeze",
    "gelu",
    "gru",
    "identity",
    "learned_noise",
    "linear",
    "lstm",
    "relu",
    "serial",
    "sigmoid",
    "silu",
    "softplus",
    "stateless",
    "tanh",
]

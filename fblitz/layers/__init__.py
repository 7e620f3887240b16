"""Functional Bayesian layers and combinators."""

from fblitz.layers.base import (
    Layer,
    StateSpec,
    apply_with_state,
    estimator_summary,
    estimator_usage,
    forward_with_state,
    init_state,
    is_stateful,
    sample_noise,
)
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
from fblitz.layers.dropout import dropout
from fblitz.layers.embedding import embedding
from fblitz.layers.linear import linear
from fblitz.layers.noise import learned_df, learned_noise
from fblitz.layers.normalization import batch_norm1d, batch_norm2d, batch_norm3d, layer_norm
from fblitz.layers.params_check import check_params, expected_params
from fblitz.layers.pooling import adaptive_avg_pool, avg_pool, max_pool
from fblitz.layers.recurrent import gru, lstm, rnn

__all__ = [
    "Layer",
    "StateSpec",
    "adaptive_avg_pool",
    "apply_with_state",
    "avg_pool",
    "batch_norm1d",
    "batch_norm2d",
    "batch_norm3d",
    "check_params",
    "dropout",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "elu",
    "estimator_summary",
    "estimator_usage",
    "embedding",
    "expected_params",
    "flatten",
    "forward_with_state",
    "freeze",
    "gelu",
    "gru",
    "identity",
    "init_state",
    "is_stateful",
    "layer_norm",
    "learned_df",
    "learned_noise",
    "linear",
    "max_pool",
    "lstm",
    "relu",
    "rnn",
    "sample_noise",
    "serial",
    "sigmoid",
    "silu",
    "softplus",
    "stateless",
    "tanh",
]

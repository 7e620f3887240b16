"""Every fblitz layer, described once for the contract test (tests/test_layer_contract.py).

A :class:`LayerCase` builds a tiny instance of a layer, an input for it, and,
where torch has a deterministic counterpart, a reference function that runs
torch's own layer loaded with the posterior means. Every public layer
constructor must appear here at least once (checked by the contract test).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz import layers
from tests.helpers import randn


class LayerCase(NamedTuple):
    """One layer configuration checked by the contract test.

    Attributes:
        name: test id.
        constructor: the public constructor it exercises (for the coverage check).
        make: ``() -> Layer``, a tiny instance.
        inputs: ``(dtype) -> x``, an input of that dtype (integer inputs ignore it).
        reference: ``(means, x) -> y``, torch's deterministic layer with the
            posterior means ``means`` (the params tree with each Gaussian node
            replaced by its ``mu``), or None when torch has no counterpart.
        output_shape: expected shape of every output leaf, in order.
        gradcheck: run ``torch.autograd.gradcheck`` in float64 (tiny layers only).
    """

    name: str
    constructor: str
    make: Callable[[], layers.Layer]
    inputs: Callable[[torch.dtype], object]
    reference: Callable[[dict, object], object] | None
    output_shape: tuple
    gradcheck: bool = True


def _linear_reference(means, x):
    return F.linear(x, means["weight"], means.get("bias"))


CASES: list[LayerCase] = [
    LayerCase(
        "linear",
        "linear",
        lambda: layers.linear(3, 2, posterior_rho_init=-2.0),
        lambda dtype: randn(10, 4, 3, dtype=dtype),
        _linear_reference,
        ((4, 2),),
    ),
    LayerCase(
        "linear-no-bias",
        "linear",
        lambda: layers.linear(3, 2, bias=False, posterior_rho_init=-2.0),
        lambda dtype: randn(11, 5, 3, dtype=dtype),
        _linear_reference,
        ((5, 2),),
    ),
    LayerCase(
        "serial-mlp",
        "serial",
        lambda: layers.serial(layers.linear(3, 4, posterior_rho_init=-2.0), layers.tanh, layers.linear(4, 2)),
        lambda dtype: randn(12, 5, 3, dtype=dtype),
        lambda m, x: _linear_reference(m["2"], torch.tanh(_linear_reference(m["0"], x))),
        ((5, 2),),
    ),
]


def _batch_norm_reference(means, x):
    return F.batch_norm(x, None, None, means.get("weight"), means.get("bias"), training=True)


CASES += [
    LayerCase(
        "dropout",
        "dropout",
        lambda: layers.dropout(0.3),
        lambda dtype: randn(13, 4, 6, dtype=dtype),
        lambda m, x: x,
        ((4, 6),),
    ),
    LayerCase(
        "serial-dropout-mlp",
        "dropout",
        lambda: layers.serial(
            layers.linear(3, 5, posterior_rho_init=-2.0), layers.relu, layers.dropout(0.5), layers.linear(5, 2)
        ),
        lambda dtype: randn(14, 6, 3, dtype=dtype),
        lambda m, x: _linear_reference(m["3"], torch.relu(_linear_reference(m["0"], x))),
        ((6, 2),),
    ),
    LayerCase(
        "max_pool2d",
        "max_pool",
        lambda: layers.max_pool(2, 2, stride=1, padding=1),
        lambda dtype: randn(15, 2, 3, 4, 5, dtype=dtype),
        lambda m, x: F.max_pool2d(x, 2, stride=1, padding=1),
        ((2, 3, 5, 6),),
    ),
    LayerCase(
        "max_pool1d-unbatched",
        "max_pool",
        lambda: layers.max_pool(1, 3, dilation=2),
        lambda dtype: randn(16, 2, 9, dtype=dtype),
        lambda m, x: F.max_pool1d(x, 3, dilation=2),
        ((2, 2),),
    ),
    LayerCase(
        "avg_pool3d",
        "avg_pool",
        lambda: layers.avg_pool(3, (1, 2, 2)),
        lambda dtype: randn(17, 1, 2, 2, 4, 4, dtype=dtype),
        lambda m, x: F.avg_pool3d(x, (1, 2, 2)),
        ((1, 2, 2, 2, 2),),
    ),
    LayerCase(
        "adaptive_avg_pool2d",
        "adaptive_avg_pool",
        lambda: layers.adaptive_avg_pool(2, (2, 3)),
        lambda dtype: randn(18, 2, 3, 5, 7, dtype=dtype),
        lambda m, x: F.adaptive_avg_pool2d(x, (2, 3)),
        ((2, 3, 2, 3),),
    ),
    LayerCase(
        "batch_norm1d",
        "batch_norm1d",
        lambda: layers.batch_norm1d(3),
        lambda dtype: randn(19, 6, 3, dtype=dtype),
        _batch_norm_reference,
        ((6, 3),),
    ),
    LayerCase(
        "batch_norm2d",
        "batch_norm2d",
        lambda: layers.batch_norm2d(2),
        lambda dtype: randn(20, 3, 2, 3, 3, dtype=dtype),
        _batch_norm_reference,
        ((3, 2, 3, 3),),
    ),
    LayerCase(
        "batch_norm3d-no-affine",
        "batch_norm3d",
        lambda: layers.batch_norm3d(2, affine=False),
        lambda dtype: randn(21, 2, 2, 2, 2, 3, dtype=dtype),
        _batch_norm_reference,
        ((2, 2, 2, 2, 3),),
    ),
    LayerCase(
        "layer_norm",
        "layer_norm",
        lambda: layers.layer_norm((2, 3)),
        lambda dtype: randn(22, 4, 2, 3, dtype=dtype),
        lambda m, x: F.layer_norm(x, (2, 3), m["weight"], m["bias"]),
        ((4, 2, 3),),
    ),
    LayerCase(
        "serial-conv-free-bn-mlp",
        "serial",
        lambda: layers.serial(layers.linear(3, 4), layers.batch_norm1d(4), layers.tanh, layers.linear(4, 1)),
        lambda dtype: randn(23, 8, 3, dtype=dtype),
        lambda m, x: _linear_reference(m["3"], torch.tanh(_batch_norm_reference(m["1"], _linear_reference(m["0"], x)))),
        ((8, 1),),
    ),
]

# Constructors that are not layers with Bayesian weights, or that are covered
# inside other cases (activations appear in serial cases).
EXEMPT = {
    "Layer",
    "stateless",
    "relu",
    "tanh",
    "sigmoid",
    "gelu",
    "softplus",
    "elu",
    "silu",
    "identity",
    "flatten",
    "freeze",
    "learned_noise",
    "StateSpec",
    "apply_with_state",
    "init_state",
    "is_stateful",
    "sample_noise",
}

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
}

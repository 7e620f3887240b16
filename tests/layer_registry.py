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


# Recurrent layers. Their ``apply`` takes an optional initial state after ``eps``;
# a case passes it by returning ``Inputs(x, (state,))`` from ``inputs``.
class Inputs(NamedTuple):
    """A case input with extra positional arguments: ``apply(params, x, eps, *extra)``.

    The reference receives the same ``x`` and ``extra``: ``reference(means, x, *extra)``.
    """

    x: torch.Tensor
    extra: tuple = ()


def _rnn_case(name, kind, shapes, *, state=False, peephole=False, **kwargs):
    """lstm/gru(3, 2, **kwargs) on a (4, 2, 3) sequence (batch-first / unbatched per kwargs)."""
    from tests.rnn_reference import peephole_loop, torch_rnn

    unbatched = kwargs.pop("unbatched", False)
    x_shape = (4, 3) if unbatched else (2, 4, 3) if kwargs.get("batch_first") else (4, 2, 3)
    h_shape = (kwargs.get("num_layers", 1) * (1 + kwargs.get("bidirectional", False)),) + (() if unbatched else (2,))
    h_shape += (2,)

    def inputs(dtype):
        x = randn(20, *x_shape, dtype=dtype)
        if not state:
            return x
        h0 = randn(21, *h_shape, dtype=dtype)
        return Inputs(x, ((h0, randn(22, *h_shape, dtype=dtype)) if kind == "lstm" else h0,))

    reference = peephole_loop if peephole else torch_rnn(kind, 3, 2, **kwargs)
    make = (
        (lambda: layers.lstm(3, 2, peephole=True, **kwargs))
        if peephole
        else lambda: getattr(layers, kind)(3, 2, **kwargs)
    )
    return LayerCase(
        f"{kind}-{name}",
        kind,
        make,
        inputs,
        lambda m, x: reference(m, x.x, *x.extra) if isinstance(x, Inputs) else reference(m, x),
        shapes if kind == "gru" else shapes + shapes[-1:],
    )


for _kind in ("lstm", "gru"):
    CASES += [
        _rnn_case("1-layer", _kind, ((4, 2, 2), (1, 2, 2))),
        _rnn_case("2-layer-bidirectional", _kind, ((4, 2, 4), (4, 2, 2)), num_layers=2, bidirectional=True),
        _rnn_case("batch-first", _kind, ((2, 4, 2), (1, 2, 2)), batch_first=True),
        _rnn_case("no-bias", _kind, ((4, 2, 2), (1, 2, 2)), bias=False),
        _rnn_case("initial-state", _kind, ((4, 2, 4), (2, 2, 2)), state=True, bidirectional=True),
        _rnn_case("unbatched", _kind, ((4, 2), (1, 2)), unbatched=True),
        _rnn_case("unbatched-state", _kind, ((4, 2), (2, 2)), unbatched=True, state=True, num_layers=2),
    ]
CASES += [
    _rnn_case("peephole", "lstm", ((4, 2, 2), (1, 2, 2)), peephole=True),
    _rnn_case("peephole-state", "lstm", ((4, 2, 2), (1, 2, 2)), peephole=True, state=True),
    _rnn_case("peephole-no-bias", "lstm", ((4, 2, 2), (1, 2, 2)), peephole=True, bias=False),
]

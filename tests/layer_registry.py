"""Every fblitz layer, described once for the contract test (tests/test_layer_contract.py).

A :class:`LayerCase` builds a tiny instance of a layer, an input for it, and,
where torch has a deterministic counterpart, a reference function that runs
torch's own layer loaded with the posterior means. Every public layer
constructor must appear here at least once (checked by the contract test).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz import layers, models
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


def _torch_module(cls, *args, **kwargs):
    """A reference running torch's ``cls(*args, **kwargs)`` with the means (no RNG use: skip_init)."""

    def reference(means, x):
        module = torch.nn.utils.skip_init(cls, *args, **kwargs)
        with warnings.catch_warnings():  # torch's own "same" padding warns for even kernels
            warnings.filterwarnings("ignore", "Using padding='same' with even kernel", UserWarning)
            return torch.func.functional_call(module, means, (x,))

    return reference


def _embedding_reference(padding_idx=None, max_norm=None, norm_type=2.0):
    def reference(means, x):  # torch renormalises in place: give it a copy
        return F.embedding(x, means["weight"].clone(), padding_idx, max_norm, norm_type)

    return reference


def _conv_case(name, constructor, args, kwargs, x_shape, output_shape, seed=20, gradcheck=True):
    """A conv or conv_transpose case with torch's ``nn.Conv*``/``nn.ConvTranspose*`` as reference."""
    dims = constructor[-2]
    cls = getattr(torch.nn, ("ConvTranspose" if "transpose" in constructor else "Conv") + dims + "d")
    return LayerCase(
        name,
        constructor,
        lambda: getattr(layers, constructor)(*args, **kwargs, posterior_rho_init=-2.0),
        lambda dtype: randn(seed, *x_shape, dtype=dtype),
        _torch_module(cls, *args, **kwargs),
        (output_shape,),
        gradcheck,
    )


def _indices(seed, shape, high):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * high).long()


def _embedding_case(name, kwargs, x, output_shape):
    return LayerCase(
        name,
        "embedding",
        lambda: layers.embedding(7, 4, **kwargs, posterior_rho_init=-2.0),
        lambda dtype: x,
        _embedding_reference(**kwargs),
        (output_shape,),
    )


CONV_CASES = [
    _conv_case("conv1d-stride-padding", "conv1d", (2, 3, 3), {"stride": 2, "padding": 1}, (2, 2, 7), (2, 3, 4)),
    _conv_case("conv1d-unbatched-valid", "conv1d", (2, 3, 2), {"padding": "valid"}, (2, 5), (3, 4)),
    _conv_case(
        "conv1d-same-even-kernel-circular",
        "conv1d",
        (2, 2, 4),
        {"padding": "same", "padding_mode": "circular", "dilation": 2},
        (2, 2, 9),
        (2, 2, 9),
    ),
    _conv_case(
        "conv2d-same-dilation-groups",
        "conv2d",
        (4, 6, (3, 2)),
        {"padding": "same", "dilation": (2, 1), "groups": 2},
        (2, 4, 6, 5),
        (2, 6, 6, 5),
    ),
    _conv_case(
        "conv2d-no-bias-stride-reflect",
        "conv2d",
        (2, 3, 3),
        {"stride": (2, 1), "padding": (1, 2), "bias": False, "padding_mode": "reflect"},
        (2, 2, 5, 4),
        (2, 3, 3, 6),
    ),
    _conv_case("conv2d-unbatched", "conv2d", (3, 2, 2), {}, (3, 4, 3), (2, 3, 2)),
    _conv_case(
        "conv3d-replicate",
        "conv3d",
        (2, 2, 2),
        {"padding": 1, "padding_mode": "replicate"},
        (2, 2, 3, 2, 2),
        (2, 2, 4, 3, 3),
    ),
    _conv_case(
        "conv_transpose1d-output-padding",
        "conv_transpose1d",
        (2, 3, 3),
        {"stride": 2, "padding": 1, "output_padding": 1},
        (2, 2, 4),
        (2, 3, 8),
    ),
    _conv_case(
        "conv_transpose2d-groups-dilation",
        "conv_transpose2d",
        (4, 2, (2, 3)),
        {"stride": (2, 1), "output_padding": (1, 0), "dilation": (1, 2), "groups": 2},
        (2, 4, 3, 3),
        (2, 2, 7, 7),
    ),
    _conv_case(
        "conv_transpose2d-unbatched-no-bias", "conv_transpose2d", (2, 3, 2), {"bias": False}, (2, 3, 2), (3, 4, 3)
    ),
    _conv_case("conv_transpose3d", "conv_transpose3d", (2, 2, 2), {"stride": 2}, (2, 2, 2, 1, 2), (2, 2, 4, 2, 4)),
]

EMBEDDING_CASES = [
    _embedding_case("embedding", {}, _indices(30, (3, 5), 7), (3, 5, 4)),
    _embedding_case("embedding-padding-idx", {"padding_idx": 2}, torch.tensor([[2, 0, 6], [2, 2, 3]]), (2, 3, 4)),
    _embedding_case("embedding-max-norm", {"max_norm": 0.15}, torch.tensor([1, 3, 3, 5, 6, 0]), (6, 4)),
    _embedding_case(
        "embedding-max-norm-l1-padding",
        {"max_norm": 0.2, "norm_type": 1.0, "padding_idx": -1},
        torch.tensor([6, 1, 4]),
        (3, 4),
    ),
]


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
    *CONV_CASES,
    *EMBEDDING_CASES,
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
    "learned_df",  # deterministic like learned_noise; tested in tests/test_student_t.py
    "StateSpec",
    "apply_with_state",
    "init_state",
    "is_stateful",
    "sample_noise",
    "estimator_usage",  # tools that read a model, not layers; tested in tests/hostile/test_hostile_estimators.py
    "estimator_summary",
    "check_params",  # params-tree checks: tests/test_params_check.py and the contract test
    "expected_params",
    "forward_with_state",
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
    """lstm/gru/rnn(3, 2, **kwargs) on a (4, 2, 3) sequence (batch-first / unbatched per kwargs)."""
    from tests.rnn_reference import peephole_loop, torch_rnn

    unbatched = kwargs.pop("unbatched", False)
    estimator = kwargs.pop("estimator", "reparameterization")
    posterior = kwargs.pop("posterior", "gaussian")
    # relu: means around 0.1 keep most units active (mean-zero weights can leave all of them dead)
    posterior_kwargs = {
        "posterior": posterior,
        "posterior_mu_init": 0.1 if kwargs.get("nonlinearity") == "relu" else 0.0,
    }
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
        (lambda: layers.lstm(3, 2, peephole=True, estimator=estimator, **posterior_kwargs, **kwargs))
        if peephole
        else lambda: getattr(layers, kind)(3, 2, estimator=estimator, **posterior_kwargs, **kwargs)
    )
    return LayerCase(
        f"{kind}-{name}",
        kind,
        make,
        inputs,
        lambda m, x: reference(m, x.x, *x.extra) if isinstance(x, Inputs) else reference(m, x),
        shapes if kind in ("gru", "rnn") else shapes + shapes[-1:],
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


# The vanilla RNN, both nonlinearities (relu exercises the unbounded path; mirrors the lstm/gru cases).
for _act in ("tanh", "relu"):
    CASES += [
        _rnn_case(f"{_act}-1-layer", "rnn", ((4, 2, 2), (1, 2, 2)), nonlinearity=_act),
        _rnn_case(
            f"{_act}-2-layer-bidirectional",
            "rnn",
            ((4, 2, 4), (4, 2, 2)),
            nonlinearity=_act,
            num_layers=2,
            bidirectional=True,
        ),
        _rnn_case(f"{_act}-batch-first", "rnn", ((2, 4, 2), (1, 2, 2)), nonlinearity=_act, batch_first=True),
        _rnn_case(f"{_act}-no-bias", "rnn", ((4, 2, 2), (1, 2, 2)), nonlinearity=_act, bias=False),
    ]
CASES += [
    _rnn_case("initial-state", "rnn", ((4, 2, 4), (2, 2, 2)), state=True, bidirectional=True),
    _rnn_case("unbatched-state", "rnn", ((4, 2), (2, 2)), unbatched=True, state=True, num_layers=2),
    _rnn_case("relu-flipout", "rnn", ((4, 2, 2), (1, 2, 2)), nonlinearity="relu", estimator="flipout"),
    _rnn_case(
        "flipout-bidirectional-state",
        "rnn",
        ((4, 2, 4), (2, 2, 2)),
        estimator="flipout",
        state=True,
        bidirectional=True,
    ),
    _rnn_case("radial", "rnn", ((4, 2, 2), (1, 2, 2)), posterior="radial"),
]


# Local reparameterization, Flipout and the radial posterior: the same contract
# (the zero-noise check uses eps=None only where the noise trees hold seeds).
for _short, _option in [
    ("lrt", {"estimator": "local_reparameterization"}),
    ("flipout", {"estimator": "flipout"}),
    ("radial", {"posterior": "radial"}),
    ("radial-flipout", {"posterior": "radial", "estimator": "flipout"}),
]:
    CASES += [
        LayerCase(
            f"linear-{_short}",
            "linear",
            lambda o=_option: layers.linear(3, 2, posterior_rho_init=-2.0, **o),
            lambda dtype: randn(30, 4, 3, dtype=dtype),
            _linear_reference,
            ((4, 2),),
        ),
        LayerCase(
            f"conv2d-{_short}",
            "conv2d",
            lambda o=_option: layers.conv2d(2, 3, 2, padding=1, posterior_rho_init=-2.0, **o),
            lambda dtype: randn(31, 2, 2, 3, 3, dtype=dtype),
            lambda m, x: F.conv2d(x, m["weight"], m["bias"], padding=1),
            ((2, 3, 4, 4),),
        ),
        LayerCase(
            f"conv_transpose1d-{_short}",
            "conv_transpose1d",
            lambda o=_option: layers.conv_transpose1d(2, 3, 3, stride=2, posterior_rho_init=-2.0, **o),
            lambda dtype: randn(32, 2, 2, 4, dtype=dtype),
            lambda m, x: F.conv_transpose1d(x, m["weight"], m["bias"], stride=2),
            ((2, 3, 9),),
        ),
    ]

# Flipout in the recurrent layers (signs per example and feature, fixed along the sequence).
CASES += [
    _rnn_case("flipout", "lstm", ((4, 2, 2), (1, 2, 2)), estimator="flipout"),
    _rnn_case(
        "flipout-bidirectional-state",
        "gru",
        ((4, 2, 4), (2, 2, 2)),
        estimator="flipout",
        state=True,
        bidirectional=True,
    ),
    _rnn_case("flipout-unbatched", "gru", ((4, 2), (1, 2)), estimator="flipout", unbatched=True),
    _rnn_case("flipout-peephole", "lstm", ((4, 2, 2), (1, 2, 2)), estimator="flipout", peephole=True),
]


def _lenet_reference(m, x):
    x = F.max_pool2d(F.relu(F.conv2d(x, m["0"]["weight"], m["0"]["bias"], padding=2)), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, m["3"]["weight"], m["3"]["bias"], padding=2)), 2)
    x = F.relu(F.linear(x.flatten(1), m["7"]["weight"], m["7"]["bias"]))
    x = F.relu(F.linear(x, m["9"]["weight"], m["9"]["bias"]))
    return F.linear(x, m["11"]["weight"], m["11"]["bias"])


# The model zoo runs through the same contract (no gradcheck: too many parameters for finite differences).
CASES += [
    LayerCase(
        "model-lenet",
        "lenet",
        lambda: models.lenet(1, 3, input_size=8, padding=2, posterior_rho_init=-3.0),
        lambda dtype: randn(40, 2, 1, 8, 8, dtype=dtype),
        _lenet_reference,
        ((2, 3),),
        gradcheck=False,
    ),
    LayerCase(
        "model-vgg11-bn",
        "vgg11_bn",
        lambda: models.vgg11_bn(width=1 / 32, num_classes=2),
        lambda dtype: randn(41, 2, 3, 32, 32, dtype=dtype),
        None,
        ((2, 2),),
        gradcheck=False,
    ),
]

# The radial posterior (plain reparameterization with radial weight noise).
CASES += [
    _rnn_case("radial", "lstm", ((4, 2, 2), (1, 2, 2)), posterior="radial"),
    _rnn_case("radial-bidirectional", "gru", ((4, 2, 4), (2, 2, 2)), posterior="radial", bidirectional=True),
    _rnn_case("radial-flipout", "gru", ((4, 2, 2), (1, 2, 2)), posterior="radial", estimator="flipout"),
]

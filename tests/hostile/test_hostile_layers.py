"""Hostile inputs to layer constructors, ``init`` and ``apply``: a clear error or a correct result."""

import pytest
import torch
from torch import nn

from fblitz import layers
from fblitz.bridge import bayesify
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers import init_state, sample_noise
from fblitz.tree import tree_map
from tests.helpers import mlp, randn
from tests.hostile._expect import refuses

CONSTRUCTORS = {
    "linear-bias-string": (lambda: layers.linear(3, 1, bias="no"), FblitzTypeError, ("bias", "'no'")),
    "linear-freeze-int": (lambda: layers.linear(3, 1, freeze=1), FblitzTypeError, ("freeze", "1")),
    "linear-prior-pi": (lambda: layers.linear(3, 1, prior_pi=2), FblitzValueError, ("prior_pi", "[0, 1]", "2.0")),
    "linear-prior-sigma-1": (lambda: layers.linear(3, 1, prior_sigma_1=0), FblitzValueError, ("prior_sigma_1", "> 0")),
    "linear-prior-sigma-2": (lambda: layers.linear(3, 1, prior_sigma_2=-1), FblitzValueError, ("prior_sigma_2",)),
    "linear-rho-init-nan": (lambda: layers.linear(3, 1, posterior_rho_init=float("nan")), FblitzValueError,
                            ("posterior_rho_init", "finite")),
    "linear-in-features": (lambda: layers.linear(0, 1), FblitzValueError, ("in_features", ">= 1")),
    "linear-estimator": (lambda: layers.linear(3, 1, estimator="lrt"), FblitzValueError, ("estimator", "'lrt'")),
    "conv-bias-string": (lambda: layers.conv2d(1, 2, 3, bias="False"), FblitzTypeError, ("bias", "'False'")),
    "conv-transpose-bias": (lambda: layers.conv_transpose1d(1, 2, 3, bias=None), FblitzTypeError, ("bias", "None")),
    "lstm-batch-first": (lambda: layers.lstm(3, 4, batch_first="yes"), FblitzTypeError, ("batch_first", "'yes'")),
    "lstm-bidirectional": (lambda: layers.lstm(3, 4, bidirectional=1), FblitzTypeError, ("bidirectional",)),
    "lstm-peephole": (lambda: layers.lstm(3, 4, peephole="no"), FblitzTypeError, ("peephole", "'no'")),
    "gru-bias": (lambda: layers.gru(3, 4, bias="no"), FblitzTypeError, ("bias", "'no'")),
    "rnn-prior-pi": (lambda: layers.rnn(3, 4, prior_pi=-0.5), FblitzValueError, ("prior_pi",)),
    "lstm-local-reparameterization": (lambda: layers.lstm(3, 4, estimator="local_reparameterization"),
                                      FblitzValueError, ("estimator", "local_reparameterization")),
    "batch-norm-affine": (lambda: layers.batch_norm1d(4, affine="no"), FblitzTypeError, ("affine", "'no'")),
    "batch-norm-track": (lambda: layers.batch_norm2d(4, track_running_stats=0), FblitzTypeError,
                         ("track_running_stats",)),
    "layer-norm-affine": (lambda: layers.layer_norm(4, elementwise_affine="x"), FblitzTypeError,
                          ("elementwise_affine", "'x'")),
    "layer-norm-bias": (lambda: layers.layer_norm(4, bias=1.0), FblitzTypeError, ("bias", "1.0")),
    "max-pool-ceil": (lambda: layers.max_pool(2, 2, ceil_mode="no"), FblitzTypeError, ("ceil_mode", "'no'")),
    "avg-pool-ceil": (lambda: layers.avg_pool(1, 2, ceil_mode=[]), FblitzTypeError, ("ceil_mode",)),
    "embedding-sparse": (lambda: layers.embedding(5, 3, sparse="no"), FblitzTypeError, ("sparse",)),
}  # fmt: skip


@pytest.mark.parametrize("case", CONSTRUCTORS.values(), ids=CONSTRUCTORS.keys())
def test_refuses_constructor_argument(case):
    call, error, names = case
    refuses(call, error, *names)


INITS = {
    "linear": lambda: layers.linear(3, 2),
    "conv2d": lambda: layers.conv2d(1, 2, 3),
    "conv-transpose": lambda: layers.conv_transpose2d(1, 2, 3),
    "embedding": lambda: layers.embedding(5, 3),
    "lstm": lambda: layers.lstm(3, 4),
    "batch-norm": lambda: layers.batch_norm1d(3),
    "layer-norm": lambda: layers.layer_norm(3),
    "learned-noise": lambda: layers.learned_noise(1),
    "learned-df": lambda: layers.learned_df(1),
    "activation-only": lambda: layers.serial(layers.relu),
    "mlp": lambda: mlp(3, 4, 1),
    "bridge": lambda: _bridged(),
}


def _bridged():
    with torch.random.fork_rng():  # torch modules draw their initial weights from the global RNG
        torch.manual_seed(0)
        return bayesify(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)))


@pytest.mark.parametrize("build", INITS.values(), ids=INITS.keys())
@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64, "float32", float])
def test_refuses_init_dtype_that_is_not_a_float_dtype(build, dtype):
    error = refuses(lambda: build().init(0, dtype=dtype), FblitzTypeError, "dtype", "floating-point torch.dtype")
    assert str(dtype) in error or repr(dtype) in error


@pytest.mark.parametrize("build", INITS.values(), ids=INITS.keys())
def test_refuses_init_device_that_is_not_a_device(build):
    refuses(lambda: build().init(0, device="gpu0"), FblitzValueError, "device", "'gpu0'", "'cuda:1'")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("build", INITS.values(), ids=INITS.keys())
def test_refuses_cuda_on_a_cpu_only_machine(build):
    message = refuses(lambda: build().init(0, device="cuda"), FblitzValueError, "device='cuda'", "is_available()")
    assert "linker" not in message and "ATen" not in message


def test_refuses_init_state_dtype():
    refuses(lambda: init_state(layers.batch_norm1d(3), dtype=torch.int32), FblitzTypeError, "dtype", "torch.int32")


def _noise_like(layer, params, dtype=None, estimator=None):
    eps = sample_noise(layer, 1, params, estimator=estimator)
    return tree_map(lambda t: t.to(dtype) if dtype is not None and t.is_floating_point() else t, eps)


APPLY = {
    "linear-eps-float64": (layers.linear(3, 2), randn(0, 5, 3), torch.float64, None),
    "linear-flipout-eps-float64": (layers.linear(3, 2), randn(0, 5, 3), torch.float64, "flipout"),
    "conv-eps-float64": (layers.conv1d(2, 3, 3), randn(0, 4, 2, 7), torch.float64, None),
    "lstm-eps-float64": (layers.lstm(3, 4), randn(0, 5, 2, 3), torch.float64, None),
    "gru-flipout-eps-float64": (layers.gru(3, 4), randn(0, 5, 2, 3), torch.float64, "flipout"),
    "embedding-eps-float64": (layers.embedding(5, 3), torch.tensor([0, 4, 2]), torch.float64, None),
}


@pytest.mark.parametrize("case", APPLY.values(), ids=APPLY.keys())
def test_refuses_noise_of_another_dtype_than_the_params(case):
    layer, x, dtype, estimator = case
    params = layer.init(0)
    eps = _noise_like(layer, params, dtype, estimator)
    refuses(lambda: layer.apply(params, x, eps), FblitzTypeError, "eps", "torch.float32", "torch.float64")


def test_refuses_noise_of_another_shape():
    layer = layers.linear(3, 2)
    params = layer.init(0)
    eps = {"weight": torch.zeros(3, 2), "bias": torch.zeros(2)}
    refuses(lambda: layer.apply(params, randn(0, 5, 3), eps), FblitzValueError, "eps", "(2, 3)", "(3, 2)")


META = {
    "linear": (layers.linear(3, 2), (5, 3), (5, 2)),
    "conv2d": (layers.conv2d(1, 2, 3), (4, 1, 6, 6), (4, 2, 4, 4)),
    "mlp": (mlp(3, 4, 1), (5, 3), (5, 1)),
    "layer-norm-mlp": (layers.serial(layers.linear(3, 4), layers.layer_norm(4), layers.linear(4, 1)), (5, 3), (5, 1)),
    "lstm": (layers.lstm(3, 4), (6, 2, 3), (6, 2, 4)),
}


@pytest.mark.parametrize("case", META.values(), ids=META.keys())
def test_correct_meta_params_pass_the_value_checks(case):
    # meta tensors have shapes and no values: the checks that read values (finiteness, .item()) skip them
    layer, shape, out_shape = case
    params = layer.init(0)
    eps = sample_noise(layer, 1, params)
    to_meta = lambda tree: tree_map(lambda t: t.to("meta"), tree)  # noqa: E731
    out = layer.apply(to_meta(params), torch.zeros(shape, device="meta"), to_meta(eps))
    out = out[0] if isinstance(out, tuple) else out
    assert out.device.type == "meta" and tuple(out.shape) == out_shape


def test_correct_valid_dtype_and_device_spellings_are_accepted():
    for dtype, device in ((torch.float64, "cpu"), (torch.float32, torch.device("cpu")), (None, None)):
        params = layers.linear(3, 2).init(0, dtype=dtype, device=device)
        assert params["weight"]["mu"].dtype == (dtype or torch.get_default_dtype())

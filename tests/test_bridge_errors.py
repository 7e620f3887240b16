"""fblitz.bridge refuses what it cannot do with fblitz's own errors, naming the argument."""

import pytest
import torch
from torch import nn

from fblitz.bridge import bayesify, to_module
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.layers import linear
from tests.bridge_cases import build
from tests.helpers import randn


def _mlp():
    return build(lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)))


class MuRho(nn.Module):
    def __init__(self):
        super().__init__()
        self.mu, self.rho = nn.Linear(2, 2), nn.Linear(2, 2)


@pytest.mark.parametrize(
    "make, kwargs, error, match",
    [
        (lambda: "net", {}, FblitzTypeError, "module must be a torch.nn.Module, got str"),
        (_mlp, {"bayesian": "*.wieght"}, FblitzValueError, r"pattern '\*.wieght' matches no trainable parameter"),
        (_mlp, {"bayesian": ["0.*", "5.*"]}, FblitzValueError, r"pattern '5.\*' matches no trainable"),
        (_mlp, {"bayesian": 3}, FblitzTypeError, "bayesian must be a name pattern"),
        (_mlp, {"bayesian": []}, FblitzTypeError, "bayesian must be a name pattern"),
        (_mlp, {"bayesian": lambda name, p: False}, FblitzValueError, "chose none of the trainable parameters"),
        (_mlp, {"init": "kaiming"}, FblitzValueError, "init must be one of"),
        (_mlp, {"init": "blitz", "moped_delta": 0.1}, FblitzValueError, "moped_delta needs init='module'"),
        (_mlp, {"moped_delta": -1.0}, FblitzValueError, "moped_delta must be > 0"),
        (_mlp, {"prior": "normal"}, FblitzTypeError, "prior"),
        (lambda: nn.LSTM(2, 3, proj_size=2), {}, FblitzValueError, "proj_size > 0 is not supported"),
        (lambda: nn.SyncBatchNorm(3), {}, FblitzTypeError, "SyncBatchNorm at '<root>' is not supported"),
        (lambda: nn.LazyLinear(3), {}, FblitzValueError, "uninitialised lazy parameter 'weight'"),
        (lambda: nn.ReLU(), {}, FblitzValueError, "module has no trainable parameter: ReLU"),
        (lambda: nn.Linear(2, 2).requires_grad_(False), {}, FblitzValueError, "no trainable parameter"),
        (MuRho, {}, FblitzValueError, "exactly 'mu' and 'rho'"),
    ],
)
def test_bayesify_refuses(make, kwargs, error, match):
    module = build(make)
    with pytest.raises(error, match=match):
        bayesify(module, **kwargs)


def test_apply_and_to_module_check_their_arguments():
    model = bayesify(_mlp(), bayesian="*.weight")
    params = model.init(0)
    x = randn(0, 2, 3)
    with pytest.raises(FblitzValueError, match="params is missing '2.bias'"):
        model.apply({"0": params["0"], "2": {"weight": params["2"]["weight"]}}, x)
    with pytest.raises(FblitzTypeError, match=r"params at '0.weight' must be a dict with keys \['mu', 'rho'\]"):
        model.apply({**params, "0": {**params["0"], "weight": params["0"]["weight"]["mu"]}}, x)
    with pytest.raises(FblitzTypeError, match="params at '0.bias' must be a tensor of shape"):
        model.apply({**params, "0": {**params["0"], "bias": {"value": 1}}}, x)
    with pytest.raises(FblitzTypeError, match=r"params must be a dict with keys \['0', '2'\] for bayesify"):
        model.apply([params], x)
    with pytest.raises(FblitzValueError, match="eps has no entry for the module's '0.weight'"):
        model.apply(params, x, {"2": {}})
    with pytest.raises(FblitzTypeError, match="x must have the params' dtype torch.float32"):
        model.apply(params, x.double())
    with pytest.raises(FblitzValueError, match=r"the module \(Sequential\) cannot run on x"):
        model.apply(params, randn(1, 2, 5))
    with pytest.raises(FblitzTypeError, match="model must be a layer returned by fblitz.bridge.bayesify"):
        to_module(linear(3, 4), linear(3, 4).init(0))
    with pytest.raises(FblitzValueError, match="params at '0.weight' must have the shape"):
        to_module(model, {**params, "0": {**params["0"], "weight": {"mu": torch.zeros(2), "rho": torch.zeros(2)}}})


def test_packed_sequences_are_refused():
    model = bayesify(build(lambda: nn.LSTM(2, 3)))
    packed = nn.utils.rnn.pack_sequence([randn(3, 4, 2), randn(4, 2, 2)])
    with pytest.raises(FblitzTypeError, match="PackedSequence inputs are not supported"):
        model.apply(model.init(0), packed)

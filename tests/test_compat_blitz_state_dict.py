"""State dicts both ways between fblitz.compat and BLiTZ itself (skipped without BLiTZ).

compat -> BLiTZ: ``blitz_state_dict(model)`` loads strictly into the same
architecture built from BLiTZ's modules, and the frozen (posterior-mean)
outputs are the same. BLiTZ -> compat: BLiTZ's state dict loads strictly back
and gives the original tensors. Everything in float64, so "the same" is
rounding-level (BLiTZ's recurrent layers multiply in another order).
"""

import io

import pytest
import torch
import torch.nn as nn

from fblitz.compat import blitz_state_dict
from fblitz.compat import modules as compat_modules
from fblitz.compat import utils as compat_utils
from fblitz.errors import FblitzTypeError
from tests.helpers import randn
from tests.test_compat_blitz_parity import float64_default

blitz_modules = pytest.importorskip("blitz.modules")
blitz_utils = pytest.importorskip("blitz.utils")


def _model(m, utils):
    @utils.variational_estimator
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = m.BayesianConv2d(1, 2, (3, 3), bias=False)
            self.norm = nn.BatchNorm2d(2)
            self.rnn = m.BayesianGRU(2, 3)
            self.head = nn.Sequential(m.BayesianLinear(3, 2, bias=False), nn.Tanh(), nn.Linear(2, 1))

        def forward(self, x):
            h = self.norm(self.conv(x)).flatten(2).transpose(1, 2)  # (N, 9, 2) as a sequence
            return self.head(self.rnn(h)[0][:, -1])

    return Net()


CASES = {
    "linear": (lambda m, u: m.BayesianLinear(3, 4), (5, 3)),
    "linear_nobias": (lambda m, u: m.BayesianLinear(3, 4, bias=False), (5, 3)),
    "conv1d": (lambda m, u: m.BayesianConv1d(2, 3, 3, stride=2), (4, 2, 7)),
    "conv2d_nobias": (lambda m, u: m.BayesianConv2d(2, 3, (3, 2), padding=1, bias=False), (4, 2, 5, 5)),
    "conv3d": (lambda m, u: m.BayesianConv3d(1, 2, (2, 2, 2)), (2, 1, 3, 4, 4)),
    "embedding": (lambda m, u: m.BayesianEmbedding(6, 3), None),
    "lstm": (lambda m, u: m.BayesianLSTM(3, 4), (2, 5, 3)),
    "lstm_nobias_sharpen": (lambda m, u: m.BayesianLSTM(3, 4, bias=False, sharpen=True), (2, 5, 3)),
    "gru": (lambda m, u: m.BayesianGRU(3, 4, posterior_mu_init=0.2), (2, 5, 3)),
    "model": (_model, (3, 1, 5, 5)),
}


def _build(case, namespace, utils, seed):
    make, _ = CASES[case]
    with torch.random.fork_rng(), float64_default():
        torch.manual_seed(seed)
        return make(namespace, utils).double().eval()


def _frozen(module, x):
    for layer in module.modules():
        if hasattr(layer, "freeze"):
            layer.freeze = True
    with torch.no_grad(), float64_default():
        out = module(x)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("case", list(CASES))
def test_blitz_loads_a_compat_state_dict_and_computes_the_same_frozen_outputs(case):
    ours = _build(case, compat_modules, compat_utils, seed=0)
    _train_a_little(ours, case)
    theirs = _build(case, blitz_modules, blitz_utils, seed=1)  # other initial values, overwritten by loading
    buffer = io.BytesIO()
    torch.save(blitz_state_dict(ours), buffer)  # through a file, as a user would hand it over
    buffer.seek(0)
    theirs.load_state_dict(torch.load(buffer))  # strict: every key BLiTZ has, nothing else
    shape = CASES[case][1]
    x = torch.tensor([[0, 5, 2], [1, 1, 4]]) if shape is None else randn(2, *shape, dtype=torch.float64)
    torch.testing.assert_close(_frozen(theirs, x), _frozen(ours, x), rtol=1e-12, atol=1e-12)
    # and back: BLiTZ's state dict loads strictly into a fresh compat model and gives the same tensors
    back = _build(case, compat_modules, compat_utils, seed=2)
    back.load_state_dict(theirs.state_dict())
    for key, value in ours.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key


def _train_a_little(model, case):
    """Move every parameter away from its initial value (so loading is not matching by chance)."""
    with torch.no_grad():
        for index, parameter in enumerate(model.parameters()):
            parameter.add_(0.01 * randn(100 + index, *parameter.shape, dtype=parameter.dtype))


def test_the_export_adds_blitz_entries_without_changing_the_model():
    layer = compat_modules.BayesianLinear(3, 2, bias=False, seed=0)
    exported = blitz_state_dict(layer)
    assert sorted(layer.state_dict()) == ["weight_mu", "weight_rho"]  # the model stays single-copy
    assert exported["weight_sampler.mu"] is exported["weight_mu"]  # one tensor, two names
    assert torch.equal(exported["weight_sampler.eps_w"], torch.zeros(2, 3))
    assert {"bias_mu", "bias_rho", "bias_sampler.mu", "bias_sampler.rho", "bias_sampler.eps_w"} <= set(exported)
    layer.load_state_dict(exported)  # and compat itself loads it (BLiTZ's extra entries are recognised)
    with pytest.raises(FblitzTypeError, match="model must be a torch.nn.Module"):
        blitz_state_dict({"weight_mu": torch.zeros(1)})

"""Hostile inputs to the BLiTZ-compatible API: a clear error or BLiTZ's result."""

import copy
import io
import pickle

import pytest
import torch
from torch import nn

from fblitz.compat import modules as compat
from fblitz.compat.modules import BayesianModule
from fblitz.compat.utils import variational_estimator
from fblitz.errors import FblitzTypeError, FblitzValueError
from tests import blitz_reference
from tests.helpers import randn
from tests.hostile._expect import refuses


def _define(m, decorate):
    @decorate
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = m.BayesianLinear(3, 5, posterior_rho_init=-3.0)
            self.second = m.BayesianLinear(5, 2, posterior_rho_init=-3.0)

        def forward(self, x):
            return self.second(torch.relu(self.first(x)))

    return Net


def _net():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _define(compat, variational_estimator)().double()


X, Y = randn(1, 8, 3, dtype=torch.float64), randn(2, 8, 2, dtype=torch.float64)


def _elbo(criterion=None, sample_nbr=3, *, default=True, **options):
    criterion = nn.MSELoss() if criterion is None and default else criterion
    return _net().sample_elbo(X, Y, criterion, sample_nbr, **options)


REFUSED = {
    "criterion-float": (lambda: _elbo(lambda out, y: 1.0), FblitzTypeError, ("criterion", "float", "gradient")),
    "criterion-none": (lambda: _elbo(None, default=False), FblitzTypeError, ("criterion", "None")),
    "criterion-string": (lambda: _elbo("mse"), FblitzTypeError, ("criterion", "'mse'")),
    "detailed-criterion-float": (lambda: _net().sample_elbo_detailed_loss(X, Y, lambda o, y: 0.5, 2),
                                 FblitzTypeError, ("criterion", "float")),
    "sample-nbr-zero": (lambda: _elbo(sample_nbr=0), FblitzValueError, ("sample_nbr", ">= 1")),
    "sample-nbr-float": (lambda: _elbo(sample_nbr=2.0), FblitzTypeError, ("sample_nbr", "2.0")),
    "kl-weight-nan": (lambda: _elbo(complexity_cost_weight=float("nan")), FblitzValueError,
                      ("complexity_cost_weight", "finite")),
    "kl-weight-negative": (lambda: _elbo(complexity_cost_weight=-0.1), FblitzValueError,
                           ("complexity_cost_weight", ">= 0")),
    "kl-weight-string": (lambda: _elbo(complexity_cost_weight="0.1"), FblitzTypeError, ("complexity_cost_weight",)),
    "kl-weight-vector": (lambda: _elbo(complexity_cost_weight=torch.ones(2)), FblitzTypeError,
                         ("complexity_cost_weight", "0-dim")),
    "mfvi-one-draw": (lambda: _net().mfvi_forward(X, 1), FblitzValueError, ("sample_nbr", ">= 2")),
    "moped-delta": (lambda: _net().MOPED_(delta=-1), FblitzValueError, ("delta", "> 0")),
    "linear-bias-string": (lambda: compat.BayesianLinear(3, 1, bias="no"), FblitzTypeError, ("bias", "'no'")),
    "conv-bias-int": (lambda: compat.BayesianConv2d(1, 2, (3, 3), bias=0), FblitzTypeError, ("bias", "0")),
    "lstm-peephole": (lambda: compat.BayesianLSTM(3, 4, peephole="no"), FblitzTypeError, ("peephole", "'no'")),
    "linear-freeze": (lambda: compat.BayesianLinear(3, 1, freeze="no"), FblitzTypeError, ("freeze", "'no'")),
    "linear-prior-pi": (lambda: compat.BayesianLinear(3, 1, prior_pi=2, seed=0), FblitzValueError, ("pi",)),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_refuses(case):
    call, error, names = case
    with torch.random.fork_rng():  # BLiTZ-style constructors seed from the global RNG
        refuses(call, error, *names)


def _after_forward(kind):
    net = _net()
    if kind == "forward":
        net(X)
    elif kind == "sample_elbo":
        net.sample_elbo(X, Y, nn.MSELoss(), 3)
    elif kind == "backward":
        net.sample_elbo(X, Y, nn.MSELoss(), 2).backward()
    return net


@pytest.mark.parametrize("kind", ["new", "forward", "sample_elbo", "backward"])
def test_correct_deepcopy_works_at_any_time(kind):
    net = _after_forward(kind)
    twin = copy.deepcopy(net)
    frozen = lambda n: n.second.forward_frozen(torch.relu(n.first.forward_frozen(X)))  # noqa: E731
    torch.testing.assert_close(frozen(twin), frozen(net), rtol=0, atol=0)
    for layer in (twin.first, twin.second):  # no log term of the copy holds the original's autograd graph
        for value in (layer.log_prior, layer.log_variational_posterior):
            assert not isinstance(value, torch.Tensor) or value.grad_fn is None
    # and a copied net trains on its own: its parameters are not the original's
    twin.sample_elbo(X, Y, nn.MSELoss(), 2).backward()
    assert twin.first.weight_mu.grad is not None and twin.first.weight_mu is not net.first.weight_mu


class Scaled(BayesianModule):
    """A user's own Bayesian layer, setting BLiTZ's attributes in its forward pass."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        self.log_prior = -(self.scale**2)  # non-leaf tensors of this pass's autograd graph
        self.log_variational_posterior = self.scale * 0.5
        return x * self.scale


def test_correct_a_custom_bayesian_module_deepcopies_after_its_forward_pass():
    layer = Scaled()
    layer(torch.ones(2))
    twin = copy.deepcopy(layer)
    assert twin.log_prior.grad_fn is None and float(twin.log_prior) == -1.0
    assert float(pickle.loads(pickle.dumps(layer)).log_variational_posterior) == 0.5


def test_correct_recurrent_layers_deepcopy_and_pickle_after_a_forward_pass():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        lstm = compat.BayesianLSTM(3, 4)
    lstm(randn(3, 2, 5, 3))
    assert isinstance(copy.deepcopy(lstm), compat.BayesianLSTM)
    buffer = io.BytesIO()
    torch.save(lstm, buffer)
    assert isinstance(pickle.loads(pickle.dumps(lstm)), compat.BayesianLSTM)


def _pair():
    blitz_modules = pytest.importorskip("blitz.modules")  # skips only this comparison when BLiTZ is absent
    blitz_utils = pytest.importorskip("blitz.utils")
    ours = _net()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        theirs = _define(blitz_modules, blitz_utils.variational_estimator)().double()
    for name in ("first", "second"):
        blitz_reference.load(getattr(theirs, name), getattr(ours, name).variational_params())
    return ours, theirs


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_correct_sample_elbo_with_any_reduction_equals_blitz(monkeypatch, reduction):
    ours, theirs = _pair()
    draws = blitz_reference.record_draws(monkeypatch)
    criterion = nn.MSELoss(reduction=reduction)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        expected = theirs.sample_elbo(X, Y, criterion, 4, complexity_cost_weight=1 / 8)
        detailed = theirs.sample_elbo_detailed_loss(X, Y, criterion, 4, complexity_cost_weight=1 / 8)
    for name in ("first", "second"):
        reference = getattr(theirs, name)
        stacked = {n: torch.stack(draws[id(getattr(reference, f"{n}_sampler"))][:4]) for n in ("weight", "bias")}
        later = {n: torch.stack(draws[id(getattr(reference, f"{n}_sampler"))][4:]) for n in ("weight", "bias")}
        queue = [stacked, later]
        monkeypatch.setattr(getattr(ours, name), "draw_noise", lambda n, queue=queue: queue.pop(0))
    got = ours.sample_elbo(X, Y, criterion, 4, complexity_cost_weight=1 / 8)
    assert got.shape == expected.shape == ((8, 2) if reduction == "none" else ())
    torch.testing.assert_close(got.detach(), expected.detach(), rtol=1e-5, atol=1e-6)
    _, loss, likelihood_cost, complexity_cost = ours.sample_elbo_detailed_loss(
        X, Y, criterion, 4, complexity_cost_weight=1 / 8
    )
    for mine, theirs_value in zip((loss, likelihood_cost, complexity_cost), detailed[1:]):
        assert mine.shape == theirs_value.shape
        torch.testing.assert_close(mine.detach(), theirs_value.detach(), rtol=1e-5, atol=1e-6)

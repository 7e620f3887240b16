"""BLiTZ's stateful sharpening hooks on fblitz.compat's BayesianLSTM/BayesianGRU (Fortunato et al. 2017).

The sharpened weights are checked against their definition, theta = phi - eta * g + sigma_0 * eps',
with g taken by central finite differences through the layer's public frozen path (float64), and
the complexity cost against log q(phi) - log p(phi) + ||eta * g||^2 / (2 sigma_0^2).
"""

import copy
import pickle

import pytest
import torch
import torch.nn as nn

from fblitz.compat.modules import BayesianGRU, BayesianLSTM
from fblitz.compat.utils import variational_estimator
from fblitz.errors import FblitzTypeError, FblitzValueError
from tests.helpers import randn

NAMES = ("weight_ih", "weight_hh", "bias")


def _layer(cls, **kwargs):
    return cls(3, 4, sharpen=True, posterior_rho_init=-3.0, seed=0, **kwargs).double()


def _loss(out, target):
    return ((out[0][:, -1] - target) ** 2).mean()


def _frozen_loss(cls, layer, weights, x, target):
    """The loss with the layer's means set to ``weights``, through a fresh frozen copy (public API only)."""
    probe = _layer(cls)
    probe.load_state_dict(layer.state_dict())
    with torch.no_grad():
        for name, w in weights.items():
            getattr(probe, f"{name}_mu").copy_(w)
    probe.freeze = True
    with torch.no_grad():
        return _loss(probe(x), target)


@pytest.mark.parametrize("cls", [BayesianLSTM, BayesianGRU])
def test_sharpen_posterior_moves_the_drawn_weights_by_eta_times_the_loss_gradient(cls):
    layer = _layer(cls)
    x, target = randn(1, 5, 4, 3, dtype=torch.float64), randn(2, 5, 4, dtype=torch.float64)
    out = layer(x)  # a sampling pass: its weights phi are kept
    phi = dict(zip(NAMES, (w.detach().clone() for w in layer.ff_parameters)))
    loss = _loss(out, target)
    theta = dict(zip(NAMES, layer.sharpen_posterior(loss, x.shape, sigma_0=0.0)))
    # g by central differences at phi, a few entries of each tensor; BLiTZ's GRU leaves some columns unused
    h = 1e-6
    for name in NAMES:
        eta = getattr(layer, f"{name}_eta").detach()
        for index in [(0,) * phi[name].dim(), tuple(s - 1 for s in phi[name].shape)]:
            shifted = []
            for step in (h, -h):
                moved = phi[name].clone()
                moved[index] += step
                shifted.append(_frozen_loss(cls, layer, {**phi, name: moved}, x, target))
            g = float((shifted[0] - shifted[1]) / (2 * h))
            expected = float(phi[name][index] - eta[index] * g)
            assert float(theta[name][index].detach()) == pytest.approx(expected, rel=1e-6, abs=1e-9), (name, index)
        # the first entry of each tensor is live in both cells: the step is not trivially zero there
        first = (0,) * phi[name].dim()
        assert abs(float(theta[name][first].detach() - phi[name][first])) > 1e-5, name


@pytest.mark.parametrize("cls", [BayesianLSTM, BayesianGRU])
def test_the_complexity_cost_adds_the_sharpening_kl_once(cls):
    layer = _layer(cls)
    x, target = randn(3, 2, 6, 3, dtype=torch.float64), randn(4, 2, 4, dtype=torch.float64)
    loss = _loss(layer(x), target)
    plain = float((layer.log_variational_posterior - layer.log_prior).detach())
    grads = torch.autograd.grad(loss, list(layer.ff_parameters), retain_graph=True)
    sigma_0 = 0.05
    theta = layer.sharpen_posterior(loss, x.shape, sigma_0=sigma_0)
    squares = sum(float((getattr(layer, f"{n}_eta") * g).square().sum().detach()) for n, g in zip(NAMES, grads))
    cost = float((layer.log_variational_posterior - layer.log_prior).detach())
    assert cost == pytest.approx(plain + squares / (2 * sigma_0**2), rel=1e-12)
    again = layer.sharpen_posterior(loss, x.shape, sigma_0=sigma_0)  # the same draw: same KL, new eps'
    assert float((layer.log_variational_posterior - layer.log_prior).detach()) == pytest.approx(cost, rel=1e-12)
    assert not torch.equal(theta[0], again[0])


def test_a_sharpened_forward_runs_at_theta_and_trains_eta():
    layer = _layer(BayesianLSTM)
    x, target = randn(5, 2, 6, 3, dtype=torch.float64), randn(6, 2, 4, dtype=torch.float64)
    loss = _loss(layer(x), target)
    layer.reseed_(7)
    out, _ = layer(x, sharpen_loss=loss)
    layer.reseed_(7)  # the same eps' again: the weights the forward pass used
    theta = layer.sharpen_posterior(loss, x.shape)
    probe = _layer(BayesianLSTM)
    probe.load_state_dict(layer.state_dict())
    with torch.no_grad():
        for name, w in zip(NAMES, theta):
            getattr(probe, f"{name}_mu").copy_(w)
    probe.freeze = True
    torch.testing.assert_close(out, probe(x)[0], rtol=1e-12, atol=1e-12)
    (_loss((out,), target) + layer.log_variational_posterior - layer.log_prior).backward()
    assert all(float(getattr(layer, f"{n}_eta").grad.abs().sum()) > 0 for n in NAMES)
    assert float(layer.weight_ih_mu.grad.abs().sum()) > 0


def test_loss_to_sharpen_sharpens_every_pass_until_cleared_and_frozen_layers_ignore_it():
    layer = _layer(BayesianGRU)
    x, target = randn(7, 2, 3, 3, dtype=torch.float64), randn(8, 2, 4, dtype=torch.float64)
    loss = _loss(layer(x), target)
    phi = list(layer.ff_parameters)
    layer.set_loss_to_sharpen(loss)
    layer.reseed_(3)
    sharpened = layer(x)[0]
    layer.reseed_(3)
    assert torch.equal(sharpened, layer(x, sharpen_loss=loss)[0])
    assert all(a is b for a, b in zip(layer.ff_parameters, phi))  # sharpened passes keep the draw being sharpened
    layer.freeze = True
    assert torch.equal(layer(x)[0], layer.forward_frozen(x)[0])
    layer.freeze = False
    layer.set_loss_to_sharpen(None)
    layer(x)
    assert not any(a is b for a, b in zip(layer.ff_parameters, phi))  # a plain pass records a new draw


def test_sample_weights_and_get_frozen_weights_follow_blitz():
    layer = _layer(BayesianLSTM, bias=False)
    w_ih, w_hh, bias = layer.sample_weights()
    assert bias is None and w_ih.shape == (3, 16) and w_hh.shape == (4, 16)
    assert layer.ff_parameters[0] is w_ih and layer.ff_parameters[1] is w_hh and layer.ff_parameters[2] is None
    assert float((layer.log_variational_posterior - layer.log_prior).detach()) != 0
    means = layer.get_frozen_weights()
    assert means[0] is layer.weight_ih_mu and means[1] is layer.weight_hh_mu and means[2] == 0


def test_copies_and_pickles_drop_the_recorded_draw():
    layer = _layer(BayesianGRU)
    layer(randn(9, 2, 3, 3, dtype=torch.float64))
    assert layer.ff_parameters is not None
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert clone.ff_parameters is None
        assert torch.equal(clone.weight_ih_mu, layer.weight_ih_mu)


@variational_estimator
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = BayesianLSTM(3, 4, sharpen=True, seed=0)

    def forward(self, x):
        return self.rnn(x)[0][:, -1]


def test_errors_say_what_is_missing():
    x = randn(10, 2, 5, 3)
    with pytest.raises(FblitzValueError, match="needs a layer built with sharpen=True"):
        BayesianGRU(3, 4, seed=0).sharpen_posterior(torch.tensor(1.0), x.shape)
    layer = BayesianLSTM(3, 4, sharpen=True, seed=0)
    with pytest.raises(FblitzValueError, match="run a sampling forward pass first"):
        layer.sharpen_posterior(torch.tensor(1.0), x.shape)
    out = layer(x)[0]
    with pytest.raises(FblitzValueError, match="input_shape must be"):
        layer.sharpen_posterior(out.sum(), (2, 5))
    with pytest.raises(FblitzTypeError, match="loss must be a floating-point tensor"):
        layer.sharpen_posterior(1.0, x.shape)
    with pytest.raises(FblitzValueError, match="loss must be computed from the output"):
        layer.sharpen_posterior(randn(11, 3).requires_grad_().sum(), x.shape)
    net = Net()
    net.rnn.set_loss_to_sharpen(net(x).sum())
    with pytest.raises(FblitzValueError, match="use forward_with_sharpening"):
        net.sample_elbo(x, randn(12, 2, 4), nn.MSELoss(), 2)

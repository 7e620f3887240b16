"""Vectorized sampling in fblitz.compat: vmap equals a loop over the same draws, the ELBO's KL is
unbiased, BatchNorm models fall back to a loop, and the Flipout, Radial and sharpening paths."""

import pytest
import torch
import torch.nn as nn

from fblitz import kl
from fblitz.compat._module import Draw, sampling
from fblitz.compat._sampling import run_samples
from fblitz.compat.modules import BayesianConv2d, BayesianGRU, BayesianLinear, BayesianLSTM
from fblitz.compat.utils import Flipout, Radial, variational_estimator
from fblitz.tree import tree_map
from tests.helpers import randn


@variational_estimator
class ConvNet(nn.Module):
    def __init__(self, batch_norm=False):
        super().__init__()
        self.conv = BayesianConv2d(1, 3, (3, 3), padding=1, posterior_rho_init=-3.0, seed=0)
        self.norm = nn.BatchNorm2d(3) if batch_norm else nn.Identity()
        self.fc = BayesianLinear(3 * 4 * 4, 2, posterior_rho_init=-3.0, seed=1)

    def forward(self, x):
        return self.fc(torch.relu(self.norm(self.conv(x))).flatten(1))


@variational_estimator
class Recurrent(nn.Module):
    def __init__(self, cell, **kwargs):
        super().__init__()
        self.rnn = cell(2, 4, posterior_rho_init=-3.0, seed=0, **kwargs)
        self.fc = BayesianLinear(4, 1, posterior_rho_init=-3.0, seed=1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.fc(out[:, -1])


def _loop(model, noise, x, y, criterion, count):
    """The S forward passes one by one, each with its slice of the same noise."""
    layers = list(noise)
    outputs, losses = [], []
    for i in range(count):
        with sampling({layer: Draw(tree_map(lambda t, i=i: t[i], noise[layer])) for layer in layers}) as context:
            out = model(x)
        kl_i = sum(q - p for q, p in context.log_terms.values())
        outputs.append(out)
        losses.append(criterion(out, y) + kl_i / len(x))
    return torch.stack(outputs), torch.stack(losses).mean()


@pytest.mark.parametrize(
    "make, x, y",
    [
        (ConvNet, randn(0, 5, 1, 4, 4), randn(1, 5, 2)),
        (lambda: Recurrent(BayesianLSTM), randn(0, 3, 6, 2), randn(1, 3, 1)),
        (lambda: Recurrent(Flipout(BayesianGRU)), randn(0, 3, 6, 2), randn(1, 3, 1)),
    ],
)
def test_vmapped_samples_equal_a_loop_over_the_same_draws(monkeypatch, make, x, y):
    model, count = make(), 4
    layers = [m for m in model.modules() if hasattr(m, "draw_noise")]
    noise = {layer: layer.draw_noise(count) for layer in layers}
    for layer in layers:
        monkeypatch.setattr(layer, "draw_noise", lambda n, e=noise[layer]: e)
    expected_outputs, expected_loss = _loop(model, noise, x, y, nn.MSELoss(), count)
    predictions, loss, data, complexity = model.sample_elbo_detailed_loss(x, y, nn.MSELoss(), count, 1 / len(x))
    torch.testing.assert_close(torch.from_numpy(predictions), expected_outputs.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, data + complexity)


def test_sample_elbo_kl_is_unbiased_for_the_closed_form():
    """E[log q(w) - log p(w)] over the draws is the closed-form KL (Gaussian prior, pi = 1)."""
    model = ConvNet().double()
    samples = run_samples(model, randn(0, 2, 1, 4, 4, dtype=torch.float64), 4000)
    exact = sum(
        kl.kl_divergence(m.variational_params(), m.priors(), mode="closed_form") for m in (model.conv, model.fc)
    )
    standard_error = samples.kl.std() / 4000**0.5
    assert abs(samples.kl.mean() - exact) < 4 * standard_error


def test_batch_norm_models_run_their_samples_in_a_loop_and_update_statistics():
    model = ConvNet(batch_norm=True)
    x, y = randn(0, 6, 1, 4, 4), randn(1, 6, 2)
    loss = model.sample_elbo(x, y, nn.MSELoss(), 3, 1 / 6)
    loss.backward()
    assert int(model.norm.num_batches_tracked) == 3
    assert model.conv.weight_mu.grad is not None


def test_flipout_layer_has_the_marginals_of_plain_sampling():
    plain, flip = BayesianLinear(3, 2, posterior_rho_init=-1.0, seed=0), Flipout(BayesianLinear)(3, 2, seed=1)
    flip.load_state_dict(plain.state_dict())
    x, n = randn(2, 4, 3), 10_000
    with torch.no_grad():
        a, b = run_samples(plain, x, n).outputs, run_samples(flip, x, n).outputs
    # two-sample z of the means and of the variances (from the fourth moments), bound 5: a variance
    # off by 10% (a standard deviation off by 5%) fails. Over 20 pairs of layer seeds the largest |z| was 3.2.
    mean_z = (a.mean(0) - b.mean(0)) / ((a.var(0) + b.var(0)) / n).sqrt()

    def var_of_var(t):
        centred = t - t.mean(0)
        return (centred.pow(4).mean(0) - centred.square().mean(0).square()) / n

    var_z = (a.var(0) - b.var(0)) / (var_of_var(a) + var_of_var(b)).sqrt()
    assert float(mean_z.abs().max()) < 5 and float(var_z.abs().max()) < 5, (mean_z, var_z)
    flip.freeze = True
    assert torch.equal(flip(x), plain.forward_frozen(x))


@pytest.mark.parametrize("cls", [BayesianLinear, BayesianLSTM])
def test_radial_layer_complexity_cost_is_fblitz_monte_carlo_kl(cls):
    layer = Radial(cls)(2, 3, seed=0)
    x = randn(0, 4, 5, 2) if cls is BayesianLSTM else randn(0, 4, 2)
    eps = layer.draw_noise()
    with sampling({layer: Draw(eps)}) as context:
        layer(x)
    log_q, log_p = context.log_terms[layer]
    radial_priors = {n: layer._layer.priors[next(iter(layer._layer.priors))] for n in layer.variational_params()}
    expected = kl.kl_divergence(layer.variational_params(), radial_priors, eps, mode="monte_carlo")
    torch.testing.assert_close(log_q - log_p, expected)
    norms = [e.norm() for e in eps.values() if isinstance(e, torch.Tensor) and e.dtype.is_floating_point]
    assert all(n < 6 for n in norms)  # radial draws have a half-normal length, not ~sqrt(D)


def test_forward_with_sharpening_moves_the_recurrent_weights():
    model = Recurrent(BayesianLSTM, sharpen=True)
    x, y = randn(0, 3, 6, 2), randn(1, 3, 1)
    out = model.forward_with_sharpening(x, y, nn.MSELoss(), sigma_0=0.01)
    loss = nn.MSELoss()(out, y) + model.nn_kl_divergence() / 3
    loss.backward()
    assert model.rnn.weight_ih_eta.grad is not None and model.rnn.weight_ih_eta.grad.abs().sum() > 0
    plain = Recurrent(BayesianLSTM)
    plain.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        model.rnn.weight_ih_eta.zero_(), model.rnn.weight_hh_eta.zero_(), model.rnn.bias_eta.zero_()
    model.rnn.reseed_(4), model.fc.reseed_(5), plain.rnn.reseed_(4), plain.fc.reseed_(5)
    sharpened = model.forward_with_sharpening(x, y, nn.MSELoss(), sigma_0=0.0)
    # eta = 0 and sigma_0 = 0: theta = phi, the plain draw (phi's noise comes first in each stream)
    torch.testing.assert_close(sharpened, plain(x))


def test_vmapped_gradients_equal_the_loop_gradients(monkeypatch):
    model = ConvNet().double()
    x, y = randn(0, 5, 1, 4, 4, dtype=torch.float64), randn(1, 5, 2, dtype=torch.float64)
    noise = {layer: layer.draw_noise(3) for layer in (model.conv, model.fc)}
    for layer in noise:
        monkeypatch.setattr(layer, "draw_noise", lambda n, e=noise[layer]: e)
    grads = torch.autograd.grad(model.sample_elbo(x, y, nn.MSELoss(), 3, 1 / 5), list(model.parameters()))
    expected = torch.autograd.grad(_loop(model, noise, x, y, nn.MSELoss(), 3)[1], list(model.parameters()))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@variational_estimator
class Branchy(nn.Module):
    """A forward pass vmap cannot run: a Python branch on a tensor's value."""

    def __init__(self):
        super().__init__()
        self.fc = BayesianLinear(3, 1, posterior_rho_init=-3.0, seed=0)

    def forward(self, x):
        out = self.fc(x)
        return out if out.sum() > -1e9 else -out


def test_models_vmap_cannot_run_fall_back_to_the_loop(monkeypatch):
    model = Branchy()
    x, y = randn(0, 4, 3), randn(1, 4, 1)
    noise = {model.fc: model.fc.draw_noise(3)}
    monkeypatch.setattr(model.fc, "draw_noise", lambda n: noise[model.fc])
    expected = _loop(model, noise, x, y, nn.MSELoss(), 3)[1]
    torch.testing.assert_close(model.sample_elbo(x, y, nn.MSELoss(), 3, 1 / 4), expected)


@variational_estimator
class DictOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = BayesianLinear(3, 2, posterior_rho_init=-3.0, seed=0)

    def forward(self, x):
        return {"mean": self.fc(x), "extra": [x.sum(dim=1)]}


def test_models_returning_dicts_are_sampled_like_any_pytree():
    model = DictOutput()
    x = randn(0, 5, 3)
    samples = run_samples(model, x, 4)
    assert samples.outputs["mean"].shape == (4, 5, 2) and samples.outputs["extra"][0].shape == (4, 5)
    assert not torch.equal(samples.outputs["mean"][0], samples.outputs["mean"][1])
    torch.testing.assert_close(samples.outputs["extra"][0], x.sum(dim=1).expand(4, 5))

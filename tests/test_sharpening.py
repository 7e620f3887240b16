"""Posterior sharpening: reduction to the plain sample, the exact step, vmap, gradients, training."""

import pytest
import torch
from torch.func import grad, grad_and_value

from fblitz import layers, likelihoods, optim
from fblitz.errors import FblitzValueError
from fblitz.objectives import elbo_samples
from fblitz.tree import tree_leaves, tree_map
from fblitz.variational.distributions import sigma
from fblitz.variational.sharpening import (
    init_eta,
    sample_sharpening_noise,
    sharpen,
    sharpened_elbo,
    sharpened_elbo_samples,
)
from tests.helpers import randn

LIKELIHOOD = likelihoods.gaussian(0.5)


def _last(outputs):
    return outputs[0][:, -1]


def _model(kind="gru", posterior="gaussian"):
    rnn = getattr(layers, kind)(2, 3, batch_first=True, bayes=layers.Bayes(rho_init=-3.0, posterior=posterior))
    return layers.serial(rnn, layers.stateless(_last), layers.linear(3, 1, bayes=layers.Bayes(rho_init=-3.0)))


def _data(n=8):
    x = randn(1, n, 5, 2, dtype=torch.float64)
    return x, x.sum(dim=(1, 2)).unsqueeze(1).tanh() + 0.1 * randn(2, n, 1, dtype=torch.float64)


def _setup(kind="gru", value=0.0, n_samples=3, posterior="gaussian"):
    model = _model(kind, posterior)
    params = model.init(0, dtype=torch.float64)
    eta = init_eta(params, lambda path: path.startswith("0."), value)
    return model, params, eta, sample_sharpening_noise(model, 1, params, eta, n_samples)


def _terms(model, params, eta, noise, x, y, **kwargs):
    kwargs = {"sigma_0": 0.02, "complexity_cost_weight": 1 / 64, **kwargs}
    return sharpened_elbo_samples(model, params, eta, noise, x, y, likelihood=LIKELIHOOD, **kwargs)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_zero_step_and_zero_sigma_0_is_the_plain_sample(kind):
    model, params, eta, noise = _setup(kind)
    x, y = _data()
    terms = _terms(model, params, eta, noise, x, y, sigma_0=0.0)
    plain = elbo_samples(model, params, noise["phi"], x, y, likelihood=LIKELIHOOD, complexity_cost_weight=1 / 64)
    torch.testing.assert_close(terms.data, plain.data, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(terms.kl, plain.kl, rtol=1e-12, atol=1e-12)
    assert torch.equal(terms.sharpening_kl, torch.zeros(3, dtype=torch.float64))


def test_the_step_and_its_kl_follow_the_formula():
    model, params, eta, noise = _setup(value=0.3, n_samples=None)
    x, y = _data()
    sigma_0 = 0.05
    sharp = sharpen(model, params, eta, noise, x, y, likelihood=LIKELIHOOD, sigma_0=sigma_0)
    names = sorted(eta["0"])
    nodes = [params["0"][n] for n in names]
    phi = [node["mu"] + sigma(node["rho"]) * noise["phi"]["0"][n] for n, node in zip(names, nodes)]

    def data(weights):  # the data term at given recurrent weights, the rest sampled as usual
        p = {**params, "0": {n: {"mu": w, "rho": node["rho"]} for n, w, node in zip(names, weights, nodes)}}
        e = {**noise["phi"], "0": {n: torch.zeros_like(w) for n, w in zip(names, weights)}}
        return LIKELIHOOD(model.apply(p, x, e), y)

    g = grad(data)(phi)
    for n, w, gn in zip(names, phi, g):
        expected = w - 0.3 * gn + sigma_0 * noise["theta"]["0"][n]
        torch.testing.assert_close(sharp.params["0"][n]["mu"], expected, rtol=1e-12, atol=1e-12)
    expected_kl = sum((0.3 * gn).square().sum() for gn in g) / (2 * sigma_0**2)
    torch.testing.assert_close(sharp.kl, expected_kl, rtol=1e-12, atol=1e-14)
    assert float(sharp.kl) > 0


def test_vmap_sample_i_equals_sample_i_alone():
    model, params, eta, noise = _setup(value=0.5)
    x, y = _data()
    batched = _terms(model, params, eta, noise, x, y)
    for i in range(3):
        alone = _terms(model, params, eta, tree_map(lambda t, i=i: t[i : i + 1], noise), x, y)
        for a, b in zip(batched, alone):
            torch.testing.assert_close(a[i], b[0], rtol=1e-12, atol=1e-12)
    assert not torch.equal(batched.data[0], batched.data[1])


@pytest.mark.parametrize("second_order", [True, False])
def test_gradients_are_finite_and_reach_eta(second_order):
    model, params, eta, noise = _setup(value=0.5)
    x, y = _data()

    def loss(p, e):
        return _terms(model, p, e, noise, x, y, second_order=second_order).loss.mean()

    grads = grad(loss, argnums=(0, 1))(params, eta)
    assert all(bool(torch.isfinite(g).all()) for g in tree_leaves(grads))
    assert float(grads[1]["0"]["weight_hh_l0"].abs().sum()) > 0


def test_second_order_changes_the_mean_gradient():
    model, params, eta, noise = _setup(value=0.5)
    x, y = _data()
    first, second = (
        grad(lambda p, s=s: _terms(model, p, eta, noise, x, y, second_order=s).loss.mean())(params)
        for s in (False, True)
    )
    assert not torch.allclose(first["0"]["weight_hh_l0"]["mu"], second["0"]["weight_hh_l0"]["mu"])


def test_a_short_training_run_lowers_the_loss_and_learns_eta():
    model = _model("gru")
    params = model.init(0)
    eta = init_eta(params, lambda path: path.startswith("0."))
    x, y = (t.float() for t in _data(16))
    opt = optim.adam(5e-2)
    trainable = (params, eta)
    state = opt.init(trainable)

    def loss(pe, key):
        noise = sample_sharpening_noise(model, key, pe[0], pe[1], 2)
        return sharpened_elbo(model, pe[0], pe[1], noise, x, y, likelihood=LIKELIHOOD, sigma_0=0.02,
                              complexity_cost_weight=1 / 64).loss  # fmt: skip

    losses = []
    for step in range(10):
        grads, value = grad_and_value(loss)(trainable, step)
        updates, state = opt.update(grads, state, trainable)
        trainable = optim.apply_updates(trainable, updates)
        losses.append(float(value))
    assert sum(losses[-3:]) < 0.85 * sum(losses[:3]), losses  # measured 0.75
    assert float(trainable[1]["0"]["weight_ih_l0"].abs().max()) > 0


def test_radial_layers_can_be_sharpened():
    model, params, eta, noise = _setup(value=0.5, posterior="radial")
    x, y = _data()
    terms = _terms(model, params, eta, noise, x, y)
    assert all(bool(torch.isfinite(t).all()) for t in terms)


def test_bad_arguments_are_rejected():
    model, params, eta, noise = _setup()
    x, y = _data()
    with pytest.raises(FblitzValueError, match="sigma_0 must be >= 0"):
        _terms(model, params, eta, noise, x, y, sigma_0=-1.0)
    with pytest.raises(FblitzValueError, match="eta at '0.nope'"):
        _terms(model, params, {"0": {"nope": torch.zeros(2)}}, noise, x, y)
    with pytest.raises(FblitzValueError, match="selects no Gaussian node"):
        init_eta(params, lambda path: False)
    with pytest.raises(FblitzValueError, match="noise must be"):
        _terms(model, params, eta, noise["phi"], x, y)
    lrt = layers.linear(2, 1, bayes=layers.Bayes(estimator="local_reparameterization"))
    p = lrt.init(0)
    e = init_eta(p)
    with pytest.raises(FblitzValueError, match="must be weight noise"):
        sharpened_elbo(lrt, p, e, sample_sharpening_noise(lrt, 0, p, e, 2), randn(3, 4, 2), randn(4, 4, 1),
                       likelihood=LIKELIHOOD, sigma_0=0.1)  # fmt: skip

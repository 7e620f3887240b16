import math

import pytest
import torch
import torch.nn.functional as F

from fblitz import layers, likelihoods, optim
from fblitz.errors import FblitzValueError, NonFiniteError
from fblitz.objectives import negative_elbo
from fblitz.random import sample_eps
from fblitz.train import fit, kl_weights, make_train_step, minibatch_weights
from tests.helpers import assert_trees_equal, clone_tree, mlp, randn


@pytest.mark.parametrize("m", [1, 2, 5, 24, 1100])
def test_minibatch_weights_sum_to_one_and_follow_the_formulas(m):
    uniform = minibatch_weights(m, "uniform")
    blundell = minibatch_weights(m, "blundell")
    assert math.isclose(sum(uniform), 1.0, rel_tol=1e-12) and math.isclose(sum(blundell), 1.0, rel_tol=1e-12)
    assert all(w == 1 / m for w in uniform)
    if m < 1000:  # where 2^M is an exact float, compare with the paper's formula directly
        for i, w in enumerate(blundell, start=1):
            assert math.isclose(w, 2 ** (m - i) / (2**m - 1), rel_tol=1e-12)
    assert all(a >= b for a, b in zip(blundell, blundell[1:]))  # early batches carry more KL
    assert m == 1 or blundell[0] > blundell[1]


def test_kl_weights_convention():
    assert kl_weights(100, 4) == [0.01] * 4
    blundell = kl_weights(100, 4, "blundell")
    assert math.isclose(sum(blundell) / 4, 0.01)  # the average weight is still 1 / N
    assert math.isclose(blundell[0], 4 * (8 / 15) / 100)
    assert kl_weights(100, 2, complexity_cost_weight=0.5) == [0.5, 0.5]
    with pytest.raises(FblitzValueError, match="scheme must be one of"):
        kl_weights(100, 2, "linear")


def regression_data(n=64):
    x = randn(0, n, 2)
    y = x @ torch.tensor([[1.5], [-2.0]]) + 0.1 * randn(1, n, 1)
    return x, y


def run_fit(**kwargs):
    model = mlp(2, 16, 1, posterior_rho_init=-5.0)
    x, y = regression_data()
    defaults = dict(
        likelihood=likelihoods.gaussian(0.1),
        optimizer=optim.adam(0.01),
        key=3,
        epochs=20,
        batch_size=16,
        n_samples=2,
        progress=False,
    )
    defaults.update(kwargs)
    return fit(model, model.init(0), x, y, **defaults)


def test_same_seed_gives_identical_parameters():
    a, b = run_fit(), run_fit()
    assert_trees_equal(a.params, b.params)
    assert a.history["loss"] == b.history["loss"]
    c = run_fit(key=4)
    assert a.history["loss"] != c.history["loss"]


def test_loss_decreases_and_history_is_recorded():
    result = run_fit(epochs=40)
    loss, data, kl = (result.history[name] for name in ("loss", "data", "kl"))
    assert len(loss) == 40 and len(kl) == 40
    assert sum(loss[-5:]) / 5 < 0.5 * sum(loss[:5]) / 5
    # each epoch's loss is its data term plus the KL at the default weight 1 / N (N = 64)
    assert loss == pytest.approx([d + k / 64 for d, k in zip(data, kl)], rel=1e-5)
    # and the fit is a fit: the mean-weight predictions explain the linear target (variance 6.25)
    x, y = regression_data()
    model = mlp(2, 16, 1, posterior_rho_init=-5.0)
    residual = model.apply(result.params, x, None) - y
    assert float(residual.square().mean()) < 0.15  # measured 0.047; noise variance 0.01


def test_fit_does_not_mutate_and_can_resume_its_optimizer_state():
    model = mlp(2, 4, 1)
    params = model.init(0)
    before = clone_tree(params)
    x, y = regression_data(16)
    first = fit(
        model,
        params,
        x,
        y,
        likelihood=F.mse_loss,
        optimizer=optim.adam(0.01),
        key=0,
        epochs=2,
        batch_size=8,
        progress=False,
    )
    assert_trees_equal(params, before)
    assert int(first.opt_state.count) == 4
    resumed = fit(
        model,
        first.params,
        x,
        y,
        likelihood=F.mse_loss,
        optimizer=optim.adam(0.01),
        key=1,
        epochs=1,
        batch_size=8,
        opt_state=first.opt_state,
        progress=False,
    )
    assert int(resumed.opt_state.count) == 6


def test_callback_can_stop_training():
    seen = []
    result = run_fit(callback=lambda info: seen.append(info.epoch) or info.epoch == 2)
    assert seen == [0, 1, 2] and len(result.history["loss"]) == 3


def test_divergence_raises_naming_the_epoch():
    with pytest.raises(NonFiniteError, match="epoch 0"):
        run_fit(likelihood=lambda out, y: (out - y).mean() * float("inf"))


def test_bad_arguments():
    model = mlp(2, 1)
    x, y = regression_data(8)
    with pytest.raises(FblitzValueError, match="same number of rows"):
        fit(
            model,
            model.init(0),
            x,
            y[:4],
            likelihood=F.mse_loss,
            optimizer=optim.sgd(0.1),
            key=0,
            epochs=1,
            batch_size=4,
        )
    with pytest.raises(FblitzValueError, match="batch_size must be >= 1"):
        fit(model, model.init(0), x, y, likelihood=F.mse_loss, optimizer=optim.sgd(0.1), key=0, epochs=1, batch_size=0)


def test_train_step_matches_manual_gradient_step():
    model = mlp(2, 4, 1, posterior_rho_init=-3.0)
    params = model.init(0, dtype=torch.float64)
    x, y = regression_data(8)
    x, y = x.double(), y.double()
    opt = optim.sgd(0.1)
    step = make_train_step(model, likelihoods.gaussian(), opt, n_samples=3)
    new_params, _, terms = step(params, opt.init(params), 5, x, y, 0.125)
    eps = sample_eps(5, params, 3)

    def loss(p):
        return negative_elbo(model, p, eps, x, y, likelihood=likelihoods.gaussian(), complexity_cost_weight=0.125).loss

    grads = torch.func.grad(loss)(params)
    expected = optim.apply_updates(params, opt.update(grads, opt.init(params))[0])
    for got, want in zip(torch.utils._pytree.tree_leaves(new_params), torch.utils._pytree.tree_leaves(expected)):
        assert torch.allclose(got, want, rtol=1e-12)
    assert torch.allclose(terms.loss, loss(params))


def test_compiled_step_matches_eager():
    # torch.compile must give the same trajectory up to floating-point rounding.
    model = mlp(2, 8, 1, posterior_rho_init=-3.0)
    x, y = regression_data(20)
    common = dict(
        likelihood=likelihoods.gaussian(0.5),
        optimizer=optim.adam(0.01),
        key=2,
        epochs=3,
        batch_size=8,
        n_samples=2,
        progress=False,
    )
    eager = fit(model, model.init(0), x, y, **common)
    compiled = fit(model, model.init(0), x, y, compile=True, **common)
    for a, b in zip(torch.utils._pytree.tree_leaves(eager.params), torch.utils._pytree.tree_leaves(compiled.params)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_compiled_step_with_seeded_noise_matches_eager():
    # local reparameterization, dropout and Flipout draw their noise from int64 seeds inside the
    # compiled graph, with a dynamic batch size (20 rows in batches of 8: a last batch of 4).
    # A regression test: torch 2.13's inductor miscompiled (and crashed on) an earlier hash.
    model = layers.serial(
        layers.linear(2, 8, posterior_rho_init=-3.0, estimator="local_reparameterization"),
        layers.relu,
        layers.dropout(0.2),
        layers.linear(8, 1, posterior_rho_init=-3.0, estimator="flipout"),
    )
    x, y = regression_data(20)
    common = dict(
        likelihood=likelihoods.gaussian(0.5),
        optimizer=optim.adam(0.01),
        key=2,
        epochs=2,
        batch_size=8,
        n_samples=3,
        kl_mode="closed_form",
        progress=False,
    )
    eager = fit(model, model.init(0), x, y, **common)
    compiled = fit(model, model.init(0), x, y, compile=True, **common)
    for a, b in zip(torch.utils._pytree.tree_leaves(eager.params), torch.utils._pytree.tree_leaves(compiled.params)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)

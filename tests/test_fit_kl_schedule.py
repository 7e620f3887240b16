"""The KL weight ``fit`` applies to each minibatch, recorded step by step and compared with the formulas.

The recorder is an optimizer that keeps the gradients it is given and never
moves the params. With a likelihood whose gradient is zero, the gradient is
``w_i * dKL/dmu`` with the closed-form KL to a N(0, s_p^2) prior, whose
derivative in mu is ``mu / s_p^2``: so ``w_i = grad_mu * s_p^2 / mu``, read off
every step of the run, in order.

The formulas, from the papers and the convention of :mod:`fblitz.objectives`
(per-datum loss, KL weighted by ``1 / N`` by default):

* uniform: every minibatch gets the base weight c (c = 1 / N by default);
* Blundell et al. (2015, sec. 3.4): minibatch i of M gets the share
  pi_i = 2^(M-i) / (2^M - 1) of the KL, i.e. the weight c * M * pi_i, from the
  first minibatch of each epoch (the largest) to the last (the smallest),
  whatever the size of a short last minibatch.
"""

import pytest
import torch

from fblitz import layers, optim, priors
from fblitz.train import fit
from fblitz.tree import tree_map
from tests.helpers import randn

PRIOR_SIGMA = 0.5


def recording_optimizer(log):
    def init(params):
        return ()

    def update(grads, state, params=None):
        log.append(grads)
        return tree_map(torch.zeros_like, grads), state

    return optim.GradientTransformation(init, update)


def applied_weights(rows, batch_size, epochs, **fit_kwargs):
    """The KL weight of every step of a ``fit`` run, in order."""
    model = layers.linear(2, 1, prior=priors.gaussian(PRIOR_SIGMA), posterior_mu_init=0.5, posterior_rho_init=-3.0)
    params = model.init(0, dtype=torch.float64)
    x, y = randn(1, rows, 2, dtype=torch.float64), randn(2, rows, 1, dtype=torch.float64)
    log = []
    fit(
        model, params, x, y, likelihood=lambda out, target: (0.0 * out).sum(), optimizer=recording_optimizer(log),
        key=3, epochs=epochs, batch_size=batch_size, n_samples=2, progress=False, **fit_kwargs,
    )  # fmt: skip
    mu = params["weight"]["mu"]
    weights = []
    for grads in log:
        per_entry = grads["weight"]["mu"] * PRIOR_SIGMA**2 / mu
        assert torch.allclose(per_entry, per_entry.flatten()[0].expand_as(per_entry), rtol=1e-12)
        weights.append(float(per_entry.flatten()[0]))
    return weights


def blundell(m, i):
    """Blundell et al.'s share of the KL for minibatch i = 1..M."""
    return 2 ** (m - i) / (2**m - 1)


@pytest.mark.parametrize(
    "rows, batch_size",
    [(10, 4), (12, 4), (9, 9), (7, 2)],
    ids=["short-last-batch", "even-batches", "one-batch", "four-batches"],
)
@pytest.mark.parametrize("scheme", ["uniform", "blundell"])
@pytest.mark.parametrize("user_weight", [None, 0.37])
def test_each_step_gets_the_weight_of_its_position_in_the_epoch(rows, batch_size, scheme, user_weight):
    m = -(-rows // batch_size)
    base = 1 / rows if user_weight is None else user_weight
    per_epoch = [base if scheme == "uniform" else base * m * blundell(m, i) for i in range(1, m + 1)]
    got = applied_weights(rows, batch_size, epochs=2, kl_weighting=scheme, complexity_cost_weight=user_weight)
    assert got == pytest.approx(per_epoch * 2, rel=1e-12)


def test_blundell_weights_fall_by_half_from_step_to_step_and_average_the_uniform_weight():
    got = applied_weights(40, 8, epochs=1, kl_weighting="blundell")
    assert [a / b for a, b in zip(got, got[1:])] == pytest.approx([2.0] * 4, rel=1e-12)
    assert sum(got) / len(got) == pytest.approx(1 / 40, rel=1e-12)


def test_a_zero_user_weight_turns_the_kl_off():
    assert applied_weights(10, 4, epochs=1, complexity_cost_weight=0.0) == [0.0, 0.0, 0.0]

import math

import pytest
import torch
import torch.nn.functional as F

from fblitz import layers, likelihoods, priors
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.objectives import elbo_grad, elbo_samples, negative_elbo, sample_elbo
from fblitz.random import sample_eps
from fblitz.tree import tree_leaves, tree_map, tree_structure, tree_unflatten
from fblitz.variational.kl import kl_divergence, make_plan
from tests.helpers import assert_trees_equal, clone_tree, mlp, randn, to_double


def setup(prior_pi=1.0, dtype=torch.float64):
    model = mlp(
        3, 8, 2, bayes=layers.Bayes(prior=priors.scale_mixture(pi=prior_pi, sigma1=0.1, sigma2=0.4), rho_init=-3.0)
    )
    params = model.init(0, dtype=dtype)
    x, y = randn(1, 10, 3, dtype=dtype), randn(2, 10, 2, dtype=dtype)
    return model, params, x, y


def one_sample_loss(model, params, eps_i, x, y, likelihood, weight, mode):
    data = likelihood(model.apply(params, x, eps_i), y)
    kl = kl_divergence(params, model.priors, eps_i, mode=mode)
    return data + weight * kl, data, kl


def index_eps(eps, i):
    return tree_unflatten(tree_structure(eps), [leaf[i] for leaf in tree_leaves(eps)])


@pytest.mark.parametrize("mode,prior_pi", [("auto", 1.0), ("monte_carlo", 1.0), ("auto", 0.5)])
def test_vmapped_sample_i_equals_one_sample_elbo(mode, prior_pi):
    model, params, x, y = setup(prior_pi)
    eps = sample_eps(4, params, 6)
    nll = likelihoods.gaussian(0.5)
    terms = elbo_samples(model, params, eps, x, y, likelihood=nll, complexity_cost_weight=0.01, kl_mode=mode)
    assert terms.loss.shape == (6,)
    for i in range(6):
        loss, data, kl = one_sample_loss(model, params, index_eps(eps, i), x, y, nll, 0.01, mode)
        assert torch.allclose(terms.loss[i], loss, rtol=1e-12)
        assert torch.allclose(terms.data[i], data, rtol=1e-12)
        assert torch.allclose(terms.kl[i], kl, rtol=1e-12)
    mean = negative_elbo(model, params, eps, x, y, likelihood=nll, complexity_cost_weight=0.01, kl_mode=mode)
    assert torch.allclose(mean.loss, terms.loss.mean()) and torch.allclose(mean.kl, terms.kl.mean())


def test_gradients_match_finite_differences():
    model, params, x, y = setup(prior_pi=0.5)
    eps = sample_eps(2, params, 3)
    leaves = tree_leaves(params)
    structure = tree_structure(params)

    def loss(*flat):
        p = tree_unflatten(structure, list(flat))
        return negative_elbo(
            model, p, eps, x, y, likelihood=likelihoods.gaussian(1.0), complexity_cost_weight=0.1, kl_mode="auto"
        ).loss

    assert torch.autograd.gradcheck(loss, [leaf.clone().requires_grad_() for leaf in leaves])


def test_func_grad_equals_autograd():
    model, params, x, y = setup()
    eps = sample_eps(2, params, 3)

    def loss(p):
        return negative_elbo(model, p, eps, x, y, likelihood=likelihoods.gaussian(), complexity_cost_weight=0.1).loss

    grads = torch.func.grad(loss)(params)
    leaves = [leaf.clone().requires_grad_() for leaf in tree_leaves(params)]
    reference = torch.autograd.grad(loss(tree_unflatten(tree_structure(params), leaves)), leaves)
    for got, want in zip(tree_leaves(grads), reference):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_sample_elbo_is_reproducible_and_does_not_mutate():
    model, params, x, y = setup()
    before = clone_tree(params)
    a = sample_elbo(model, params, 7, x, y, likelihood=F.mse_loss, n_samples=4, complexity_cost_weight=0.1)
    b = sample_elbo(model, params, 7, x, y, likelihood=F.mse_loss, n_samples=4, complexity_cost_weight=0.1)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert_trees_equal(params, before)
    c = sample_elbo(model, params, 8, x, y, likelihood=F.mse_loss, n_samples=4, complexity_cost_weight=0.1)
    assert not torch.equal(a.data, c.data)
    with pytest.raises(TypeError, match="sample_nbr"):  # BLiTZ's spelling is fblitz.compat's only
        sample_elbo(model, params, 7, x, y, likelihood=F.mse_loss, sample_nbr=2)


def test_complexity_cost_weight_scales_only_the_kl():
    model, params, x, y = setup()
    eps = sample_eps(0, params, 2)
    base = negative_elbo(model, params, eps, x, y, likelihood=likelihoods.gaussian(), complexity_cost_weight=0.0)
    heavy = negative_elbo(model, params, eps, x, y, likelihood=likelihoods.gaussian(), complexity_cost_weight=2.0)
    assert torch.equal(base.data, heavy.data) and torch.equal(base.loss, base.data)
    assert torch.allclose(heavy.loss, heavy.data + 2.0 * heavy.kl)
    with pytest.raises(FblitzValueError, match="complexity_cost_weight must be >= 0"):
        negative_elbo(model, params, eps, x, y, likelihood=likelihoods.gaussian(), complexity_cost_weight=-1.0)


def test_eps_must_carry_a_shared_sample_axis():
    model, params, x, y = setup()
    with pytest.raises(FblitzValueError, match="leading sample axis"):
        negative_elbo(model, params, sample_eps(0, params), x, y, likelihood=likelihoods.gaussian())
    with pytest.raises(FblitzValueError, match="eps must follow the structure of sample_noise"):
        negative_elbo(model, params, {"0": {}}, x, y, likelihood=likelihoods.gaussian())
    with pytest.raises(FblitzTypeError, match="model must be a fblitz Layer"):
        negative_elbo(lambda p, x, e: x, params, sample_eps(0, params, 1), x, y, likelihood=likelihoods.gaussian())


def test_gaussian_likelihood_value():
    out, target = randn(0, 5, 2, dtype=torch.float64), randn(1, 5, 2, dtype=torch.float64)
    sigma = 0.7
    expected = -torch.distributions.Normal(out, sigma).log_prob(target).sum(dim=1).mean()
    assert torch.allclose(likelihoods.gaussian(sigma)(out, target), expected, rtol=1e-12)
    with pytest.raises(FblitzValueError, match="targets must have the shape of outputs"):
        likelihoods.gaussian()(out, target[:, :1])


def test_heteroscedastic_likelihood_value():
    out, target = randn(0, 5, 4, dtype=torch.float64), randn(1, 5, 2, dtype=torch.float64)
    scale = F.softplus(out[:, 2:]) + 1e-6
    expected = -torch.distributions.Normal(out[:, :2], scale).log_prob(target).sum(dim=1).mean()
    assert torch.allclose(likelihoods.heteroscedastic_gaussian()(out, target), expected, rtol=1e-12)
    with pytest.raises(FblitzValueError, match=r"\(\.\.\., 2 \* D\)"):
        likelihoods.heteroscedastic_gaussian()(out[:, :3], target)


def test_categorical_and_bernoulli_likelihoods():
    logits = randn(0, 6, 3, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    assert torch.allclose(likelihoods.categorical()(logits, labels), F.cross_entropy(logits, labels))
    with pytest.raises(FblitzTypeError, match="integer class indices"):
        likelihoods.categorical()(logits, labels.double())
    with pytest.raises(FblitzValueError, match="one class index per row"):
        likelihoods.categorical()(logits, labels[:4])
    binary = (labels > 0).double().unsqueeze(1)
    got = likelihoods.bernoulli()(logits[:, :1], binary)
    assert torch.allclose(got, F.binary_cross_entropy_with_logits(logits[:, :1], binary))


def test_criterion_wrapper_checks_for_a_scalar():
    out, target = randn(0, 4, 1), randn(1, 4, 1)
    assert torch.equal(likelihoods.as_likelihood(F.mse_loss)(out, target), F.mse_loss(out, target))
    with pytest.raises(FblitzValueError, match="must return a 0-dim tensor"):
        likelihoods.criterion(lambda o, t: (o - t) ** 2)(out, target)
    with pytest.raises(FblitzTypeError):
        likelihoods.as_likelihood(3)


def test_gaussian_nll_constant_for_perfect_fit():
    assert math.isclose(
        float(likelihoods.gaussian(1.0)(torch.zeros(3, 1), torch.zeros(3, 1))),
        0.5 * math.log(2 * math.pi),
        rel_tol=1e-6,
    )


def test_learned_noise_trains_with_the_heteroscedastic_likelihood():
    model = layers.serial(layers.linear(3, 1), layers.learned_noise(1))
    params = to_double(model.init(0))
    eps = sample_eps(0, params, 2)
    x, y = randn(1, 10, 3, dtype=torch.float64), randn(2, 10, 1, dtype=torch.float64)
    nll = likelihoods.heteroscedastic_gaussian()
    grads = torch.func.grad(
        lambda p: negative_elbo(model, p, eps, x, y, likelihood=nll, complexity_cost_weight=0.1).loss
    )(params)
    assert grads["1"]["noise_rho"].shape == (1,) and float(grads["1"]["noise_rho"].abs()) > 0
    prior_tree = model.priors
    assert prior_tree["1"] == {"noise_rho": None} and isinstance(prior_tree["0"]["weight"], priors.ScaleMixturePrior)


@pytest.mark.parametrize("estimator", ["reparameterization", "local_reparameterization", "flipout"])
def test_one_draw_skips_vmap_with_the_same_result(estimator):
    # S = 1 runs the model directly (no vmap); duplicating the draw forces the vmapped path.
    model = layers.serial(
        layers.linear(3, 8, bayes=layers.Bayes(rho_init=-3.0)),
        layers.batch_norm1d(8),
        layers.relu,
        layers.dropout(0.2),
        layers.linear(8, 2, bayes=layers.Bayes(rho_init=-3.0)),
    )
    params = model.init(0, dtype=torch.float64)
    state = layers.init_state(model, dtype=torch.float64)
    x, y = randn(1, 10, 3, dtype=torch.float64), randn(2, 10, 2, dtype=torch.float64)
    one = layers.sample_noise(model, 5, params, 1, estimator=estimator)
    two = tree_map(lambda t: torch.cat([t, t]), one)
    terms_one = elbo_samples(model, params, one, x, y, likelihood=F.mse_loss, kl_mode="closed_form")
    terms_two = elbo_samples(model, params, two, x, y, likelihood=F.mse_loss, kl_mode="closed_form")
    for a, b in zip(terms_one, terms_two):
        assert a.shape == (1,) and b.shape == (2,)
        torch.testing.assert_close(a[0], b[0], rtol=1e-12, atol=1e-12)
    grad_fn = elbo_grad(model, likelihoods.as_likelihood(F.mse_loss))
    plan = make_plan(params, model.priors, "closed_form")
    for a, b in zip(grad_fn(params, state, one, x, y, 0.1, plan), grad_fn(params, state, two, x, y, 0.1, plan)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_over_samples_takes_the_direct_path_only_when_every_leaf_has_one_draw():
    from fblitz.objectives import over_samples

    calls = []

    def fn(eps):
        calls.append(eps["a"].dim())
        return eps["a"] * 2 + eps["b"].sum()

    one = over_samples(fn)({"a": torch.ones(1, 2), "b": torch.ones(1, 3)})
    assert calls == [1] and torch.equal(one, torch.full((1, 2), 5.0))  # direct: fn saw unbatched (2,) leaves
    with pytest.raises(ValueError, match="same size in the mapped dimension"):  # before: silently used b[0] only
        over_samples(fn)({"a": torch.ones(1, 2), "b": torch.ones(3, 3)})

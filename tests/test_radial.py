"""The radial posterior: sampler statistics, exact log-density, KL plumbing, training.

Statistical checks use fixed seeds and 5-standard-error (or KS 2/sqrt(n))
tolerances; the density is checked against mpmath quadrature and Monte Carlo
box probabilities.
"""

import math

import mpmath
import pytest
import torch
from torch.func import grad, grad_and_value, vmap

from fblitz import layers, likelihoods, optim, priors
from fblitz.distributions import sigma
from fblitz.errors import FblitzValueError
from fblitz.kl import kl_divergence, make_plan
from fblitz.layers import sample_noise
from fblitz.objectives import sample_elbo
from fblitz.radial import log_sphere_area, noise_log_prob, radial_noise
from fblitz.tree import tree_leaves
from tests.helpers import randn

N = 20_000
EULER = 0.5772156649015329


def _draws(shape, n=N, seed=0):
    params = {"w": {"mu": torch.zeros(shape, dtype=torch.float64), "rho": torch.zeros(shape, dtype=torch.float64)}}
    return radial_noise(seed, params, n)["w"].reshape(n, -1)


def _ks(samples, cdf):
    """Kolmogorov-Smirnov distance of 1-d ``samples`` from ``cdf``."""
    x, _ = samples.sort()
    n = x.numel()
    f = cdf(x)
    upper = torch.arange(1, n + 1, dtype=x.dtype) / n
    return float(torch.maximum(upper - f, f - (upper - 1 / n)).abs().max())


@pytest.mark.parametrize("shape", [(3,), (3, 4)])
def test_direction_is_uniform_and_radius_half_normal(shape):
    eps = _draws(shape)
    dims = eps.shape[1]
    radius = eps.norm(dim=1)
    u = eps / radius[:, None]
    # E u = 0, E u u^T = I / D; each entry of u u^T has variance below 1 / D
    assert float(u.mean(0).abs().max()) < 5 * math.sqrt(1 / dims / N)
    second = u.T @ u / N - torch.eye(dims, dtype=u.dtype) / dims
    assert float(second.abs().max()) < 5 * math.sqrt(1 / dims / N)
    # |r| ~ half-normal: CDF erf(x / sqrt 2); the KS 1% critical value is 1.63 / sqrt(n)
    assert _ks(radius, lambda x: torch.erf(x / math.sqrt(2))) < 2 / math.sqrt(N)
    if dims == 3:  # Archimedes: one coordinate of a uniform direction on S^2 is uniform on [-1, 1]
        assert _ks(u[:, 2], lambda x: (x + 1) / 2) < 2 / math.sqrt(N)


def test_weight_marginals_have_mean_mu_and_variance_sigma2_over_d():
    layer = layers.linear(4, 3, posterior="radial", posterior_rho_init=-1.0)
    params = layer.init(0, dtype=torch.float64)
    eps = sample_noise(layer, 1, params, N)
    for name, node in params.items():
        w = node["mu"] + sigma(node["rho"]) * eps[name]
        dims = node["mu"].numel()
        var = sigma(node["rho"]).square() / dims  # E eps_i^2 = E r^2 E u_i^2 = 1 / D
        centred = w - node["mu"]
        assert float(((w.mean(0) - node["mu"]) / (var / N).sqrt()).abs().max()) < 5
        fourth = centred.pow(4).mean(0)
        assert float(((centred.square().mean(0) - var) / ((fourth - var.square()) / N).sqrt()).abs().max()) < 5


def test_noise_is_reproducible_and_follows_per_call_flipout_only():
    layer = layers.conv2d(2, 3, 2, posterior="radial")
    params = layer.init(0)
    a = sample_noise(layer, 7, params, 3)
    assert set(a) == {"weight", "bias"}
    assert not torch.equal(a["weight"], sample_noise(layer, 8, params, 3)["weight"])
    # local reparameterization is not for radial layers: ignored when another layer follows it ...
    model = layers.serial(layer, layers.flatten(), layers.linear(12, 1))
    both = model.init(0)
    plain = sample_noise(model, 7, both, 3)["0"]
    local = sample_noise(model, 7, both, 3, estimator="local_reparameterization")["0"]
    assert set(local) == {"weight", "bias"} and all(torch.equal(plain[k], local[k]) for k in plain)
    # ... and an error when no layer would
    with pytest.raises(FblitzValueError, match="estimator='local_reparameterization' is used by no layer"):
        sample_noise(layer, 7, params, 3, estimator="local_reparameterization")
    flipout = sample_noise(layer, 7, params, 3, estimator="flipout")
    assert set(flipout) == {"weight", "bias", "seed"} and flipout["seed"].shape == (3,)
    # the weight noise is still radial: one norm |r| per tensor and draw
    assert flipout["weight"].flatten(1).norm(dim=1).lt(10).all()


@pytest.mark.parametrize(
    "make, x",
    [
        (lambda estimator: layers.linear(3, 2, posterior="radial", posterior_rho_init=0.0, estimator=estimator),
         randn(20, 2, 3, dtype=torch.float64)),
        (lambda estimator: layers.gru(2, 2, batch_first=True, posterior="radial", posterior_rho_init=0.0,
                                      estimator=estimator),
         randn(21, 2, 3, 2, dtype=torch.float64)),
    ],
    ids=["linear", "gru"],
)  # fmt: skip
def test_radial_flipout_gives_each_example_the_radial_output_distribution(make, x):
    # Flipout's sign flips are orthogonal maps, under which the radial direction keeps its law: each
    # example's output must have plain radial sampling's distribution. Compared on N draws per estimator
    # by mean and variance (5 standard errors) and a two-sample KS distance per output (1.63 sqrt(2/N) is
    # the 1% critical value; x1.25 keeps the family of up to 12 outputs well below a 1e-4 false alarm)
    plain, flipout = make("reparameterization"), make("flipout")
    params = plain.init(0, dtype=torch.float64)
    outputs = {}
    for name, layer in (("plain", plain), ("flipout", flipout)):
        eps = sample_noise(layer, 3, params, N)
        out = vmap(lambda e, layer=layer: layer.apply(params, x, e))(eps)
        outputs[name] = (out[0] if isinstance(out, tuple) else out).reshape(N, -1)
    a, b = outputs["plain"], outputs["flipout"]
    se = ((a.var(0) + b.var(0)) / N).sqrt()
    assert float(((a.mean(0) - b.mean(0)) / se).abs().max()) < 5
    fourth = (a - a.mean(0)).pow(4).mean(0)
    assert float(((a.var(0) - b.var(0)) / (2 * (fourth - a.var(0).square()) / N).sqrt()).abs().max()) < 5
    for column in range(a.shape[1]):
        both = torch.cat([a[:, column], b[:, column]]).sort().values
        cdf_a = torch.searchsorted(a[:, column].sort().values, both, right=True) / N
        cdf_b = torch.searchsorted(b[:, column].sort().values, both, right=True) / N
        assert float((cdf_a - cdf_b).abs().max()) < 1.63 * math.sqrt(2 / N) * 1.25
    # two examples with the same input: one weight draw gives them equal outputs, Flipout different ones
    twins = x[:1].expand(2, *x.shape[1:])
    for layer, equal in ((plain, True), (flipout, False)):
        out = layer.apply(params, twins, sample_noise(layer, 4, params))
        out = out[0] if isinstance(out, tuple) else out
        assert torch.equal(out[0], out[1]) == equal


def test_log_density_is_the_gaussian_in_one_dimension():
    x = torch.linspace(-4, 4, 9, dtype=torch.float64).view(9, 1)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(x[:, 0])
    torch.testing.assert_close(torch.stack([noise_log_prob(v) for v in x]), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dims", [2, 3, 10, 100])
def test_log_density_integrates_to_one(dims):
    # integrate over shells: area(S^{D-1}) rho^{D-1} p(rho e_1), the area taken from mpmath
    area = 2 * mpmath.pi ** (dims / 2) / mpmath.gamma(dims / 2)

    def shell(rho):
        point = torch.zeros(dims, dtype=torch.float64)
        point[0] = float(rho)
        return area * rho ** (dims - 1) * mpmath.e ** float(noise_log_prob(point))

    assert abs(float(mpmath.quad(shell, [0, 1, 3, mpmath.inf])) - 1) < 1e-9
    assert math.isclose(log_sphere_area(dims), float(mpmath.log(area)), rel_tol=1e-12)


def _box_fraction(eps, low, high):
    return float(((eps >= torch.tensor(low)) & (eps <= torch.tensor(high))).all(dim=1).double().mean())


def test_log_density_matches_monte_carlo_box_probabilities():
    n = 200_000
    # D = 2 and D = 3: midpoint rules on fine grids (the boxes avoid the origin, the integrand is smooth)
    for dims, low, high, cells, seed in [
        (2, (0.2, -0.3), (1.0, 0.5), 400, 3),
        (3, (0.1, -0.4, 0.0), (0.7, 0.3, 0.6), 120, 4),
    ]:
        axes = [torch.linspace(a, b, 2 * cells + 1, dtype=torch.float64)[1::2] for a, b in zip(low, high)]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, dims)
        cell = math.prod((b - a) / cells for a, b in zip(low, high))
        exact = float(vmap(noise_log_prob)(grid).exp().sum() * cell)
        fraction = _box_fraction(_draws((dims,), n, seed=seed), low, high)
        assert abs(fraction - exact) < 5 * math.sqrt(exact * (1 - exact) / n)


def _radial_entropy(dims):
    """H(eps_r) = 1/2 + (D - 1) E log|r| - C_D with E log|r| = -(gamma + log 2) / 2."""
    constant = math.log(2) - 0.5 * math.log(2 * math.pi) - log_sphere_area(dims)
    return 0.5 - (dims - 1) * (EULER + math.log(2)) / 2 - constant


@pytest.mark.parametrize("dims", [5, 50])
def test_monte_carlo_entropy_matches_the_exact_value(dims):
    values = -vmap(noise_log_prob)(_draws((dims,), N, seed=5))
    se = float(values.std()) / math.sqrt(N)
    assert abs(float(values.mean()) - _radial_entropy(dims)) < 5 * se


def test_monte_carlo_kl_is_unbiased_for_the_exact_kl_to_a_gaussian_prior():
    # KL = -H(eps_r) - sum log sigma + D/2 log(2 pi s^2) + (|mu|^2 + sum sigma^2 / D) / (2 s^2), per tensor
    s = 0.5
    layer = layers.linear(5, 3, posterior="radial", posterior_rho_init=-1.0, prior=priors.gaussian(s))
    params = layer.init(0, dtype=torch.float64)
    exact = 0.0
    for node in params.values():
        dims, sd = node["mu"].numel(), sigma(node["rho"])
        second = float(node["mu"].square().sum() + sd.square().sum() / dims)
        exact += -_radial_entropy(dims) - float(sd.log().sum()) + dims / 2 * math.log(2 * math.pi * s * s)
        exact += second / (2 * s * s)
    eps = sample_noise(layer, 6, params, N)
    kls = vmap(lambda e: kl_divergence(params, layer.priors, e))(eps)
    assert abs(float(kls.mean()) - exact) < 5 * float(kls.std()) / math.sqrt(N)


def test_closed_form_is_an_error_and_auto_uses_monte_carlo():
    model = layers.serial(layers.linear(3, 4, posterior="radial"), layers.relu, layers.linear(4, 1))
    params = model.init(0)
    plan = make_plan(params, model.priors, "auto")
    assert [path for path, _ in plan.monte_carlo] == [("0", "bias"), ("0", "weight")]
    assert len(plan.closed_form) == 2
    with pytest.raises(FblitzValueError, match=r"closed_form' is impossible for '0.bias': its posterior is radial"):
        kl_divergence(params, model.priors, sample_noise(model, 0, params), mode="closed_form")
    with pytest.raises(FblitzValueError, match="eps is required"):
        kl_divergence(params, model.priors)


@pytest.mark.parametrize(
    "build",
    [
        lambda: layers.linear(3, 2, posterior="spherical"),
        lambda: layers.conv1d(2, 2, 3, posterior="radial", estimator="local_reparameterization"),
        lambda: layers.gru(3, 2, posterior=1),
        lambda: layers.linear(3, 2, posterior="radial", estimator="local_reparameterization"),
    ],
)
def test_bad_posterior_arguments_are_rejected(build):
    with pytest.raises(FblitzValueError, match="posterior"):
        build()


def _regression_data():
    x = randn(10, 64, 2)
    return x, (x[:, :1] - 0.5 * x[:, 1:]) + 0.05 * randn(11, 64, 1)


def _model():
    return layers.serial(
        layers.linear(2, 8, posterior="radial", posterior_rho_init=-4.0),
        layers.tanh,
        layers.linear(8, 1, posterior="radial", posterior_rho_init=-4.0, prior_pi=0.5),
    )


def test_kl_and_elbo_gradients_are_finite():
    model, (x, y) = _model(), _regression_data()
    params = model.init(0)

    def loss(p):
        return sample_elbo(model, p, 1, x, y, likelihood=likelihoods.gaussian(0.1), n_samples=3).loss

    grads = grad(loss)(params)
    assert all(bool(torch.isfinite(g).all()) for g in tree_leaves(grads))
    assert float(grads["0"]["weight"]["rho"].abs().sum()) > 0


def test_training_a_radial_model_decreases_the_loss():
    model, (x, y) = _model(), _regression_data()
    params = model.init(0)
    opt = optim.adam(5e-2)
    state = opt.init(params)
    losses = []

    def loss(p, key):
        terms = sample_elbo(model, p, key, x, y, likelihood=likelihoods.gaussian(0.1), n_samples=2,
                            complexity_cost_weight=1 / len(x))  # fmt: skip
        return terms.loss

    for step in range(60):
        grads, value = grad_and_value(loss)(params, step)
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        losses.append(float(value))
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)

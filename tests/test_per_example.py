"""Per-example noise drawn before the transforms (fblitz.per_example): what it keeps true."""

import math

import pytest
import torch
import torch.nn.functional as F

from fblitz import layers, likelihoods, seeded
from fblitz.errors import FblitzTypeError
from fblitz.kl import make_plan
from fblitz.layers.base import no_params
from fblitz.objectives import elbo_grad, elbo_samples
from fblitz.per_example import Recorder, draw_per_example
from fblitz.seeded import offset_noise
from fblitz.tree import tree_leaves, tree_map
from tests.helpers import randn


def lrt_dropout_flipout():
    return layers.serial(
        layers.linear(3, 8, posterior_rho_init=-3.0, estimator="local_reparameterization"),
        layers.relu,
        layers.dropout(0.3),
        layers.linear(8, 2, posterior_rho_init=-3.0, estimator="flipout"),
    )


MODELS = {
    "linear": lrt_dropout_flipout,
    "gru_flipout": lambda: layers.serial(
        layers.gru(3, 5, batch_first=True, estimator="flipout"), lambda out: out[0][:, -1], layers.linear(5, 1)
    ),
    "conv_lrt": lambda: layers.serial(
        layers.conv2d(1, 2, 3, padding=1, estimator="local_reparameterization"), layers.flatten(), layers.linear(32, 1)
    ),
}
INPUTS = {"linear": (3,), "gru_flipout": (4, 3), "conv_lrt": (1, 4, 4)}


def setup(name, rows=9, samples=4, dtype=torch.float64):
    model = MODELS[name]()
    params = model.init(0, dtype=dtype)
    x = randn(1, rows, *INPUTS[name], dtype=dtype)
    return model, params, x, layers.sample_noise(model, 2, params, samples)


@pytest.mark.parametrize("name", list(MODELS))
def test_sample_i_drawn_alone_equals_sample_i_of_the_batch(name):
    model, params, x, eps = setup(name)
    whole = draw_per_example(model, params, eps, x)
    assert not seeded.has_seeds(whole)  # every seed was replaced by drawn numbers
    for i in range(4):
        alone = draw_per_example(model, params, tree_map(lambda t, i=i: t[i : i + 1], eps), x)
        for a, b in zip(tree_leaves(whole), tree_leaves(alone)):
            assert torch.equal(a[i], b[0])


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rows_of_a_larger_batch_get_its_numbers(name, dtype):
    # data-parallel shared noise: rows a..b drawn with offset seeds are rows a..b of the whole batch's draw,
    # which needs torch's CPU generator draws to be prefix-consistent (every draw is rounded to 16 numbers)
    model, params, x, eps = setup(name, rows=37, dtype=dtype)
    whole = tree_leaves(draw_per_example(model, params, eps, x))
    for a, b in [(0, 5), (5, 6), (6, 37), (17, 30)]:
        part = tree_leaves(draw_per_example(model, params, offset_noise(eps, a), x[a:b]))
        for full, piece in zip(whole, part):
            if full.dim() > 2 and full.shape[1] == 37:  # per-example numbers: a row axis after the sample axis
                assert torch.equal(piece, full[:, a:b])
            else:
                assert torch.equal(piece, full)


def test_elbo_uses_the_drawn_numbers_and_keeps_vmap_equal_to_one_sample():
    model, params, x, eps = setup("linear")
    y = randn(3, 9, 2, dtype=torch.float64)
    terms = elbo_samples(model, params, eps, x, y, likelihood=F.mse_loss, kl_mode="closed_form")
    drawn = draw_per_example(model, params, eps, x)
    for i in range(4):
        out = model.apply(params, x, tree_map(lambda t, i=i: t[i], drawn))
        torch.testing.assert_close(terms.data[i], F.mse_loss(out, y), rtol=1e-12, atol=1e-12)
    # the gradient path (autograd eagerly) draws the same numbers
    grad_fn = elbo_grad(model, likelihoods.as_likelihood(F.mse_loss))
    _, grad_terms, _ = grad_fn(params, None, eps, x, y, 0.1, make_plan(params, model.priors, "closed_form"))
    torch.testing.assert_close(grad_terms.data, terms.data.mean(), rtol=1e-12, atol=1e-12)


def test_drawn_numbers_have_their_distributions():
    model = layers.serial(layers.linear(2, 4000, estimator="flipout"), layers.dropout(0.25))
    params = model.init(0, dtype=torch.float64)
    x = torch.ones(50, 2, dtype=torch.float64)
    drawn = draw_per_example(model, params, layers.sample_noise(model, 5, params, 2), x)
    signs = torch.cat(
        [drawn["0"]["seed"]["0"]["rademacher"].flatten(), drawn["0"]["seed"]["1"]["rademacher"].flatten()]
    )
    assert set(signs.unique().tolist()) == {-1.0, 1.0} and abs(float(signs.mean())) < 6 / math.sqrt(signs.numel())
    u = drawn["1"]["seed"]["uniform"]
    assert 0 <= float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 6 * math.sqrt(1 / 12 / u.numel())
    lrt = layers.linear(2, 4000, estimator="local_reparameterization")
    lrt_params = lrt.init(0, dtype=torch.float64)
    z = draw_per_example(lrt, lrt_params, layers.sample_noise(lrt, 6, lrt_params, 2), x)["seed"]["normal"]
    assert abs(float(z.mean())) < 6 / math.sqrt(z.numel()) and abs(float(z.var()) - 1) < 0.02
    # the samples are different draws
    assert not torch.equal(z[0], z[1])


def test_models_that_cannot_run_on_meta_keep_their_seeds():
    def needs_values(x):  # reads a value: impossible on the meta device
        return x * float(x.abs().max() > 0)

    model = layers.serial(layers.linear(3, 4, estimator="local_reparameterization"), layers.stateless(needs_values))
    params = model.init(0)
    eps = layers.sample_noise(model, 1, params, 2)
    assert draw_per_example(model, params, eps, randn(1, 5, 3)) is eps


def test_noise_off_the_cpu_keeps_its_seeds():
    model = lrt_dropout_flipout()
    params = model.init(0, device="meta")
    eps = layers.sample_noise(model, 1, params, 2)
    assert draw_per_example(model, params, eps, torch.empty(5, 3, device="meta")) is eps


def test_one_seed_asked_for_two_shapes_keeps_the_hash():
    def two_shapes(params, x, eps=None):
        if eps is None:
            return x
        return x + seeded.normal(eps["seed"], x.shape).sum() + seeded.normal(eps["seed"], (2,)).sum()

    def noise(key, params, n_samples=None, estimator=None):
        return {"seed": seeded.seeds(key, n_samples)}

    layer = layers.Layer(no_params, two_shapes, {}, "two_shapes", noise)
    eps = layers.sample_noise(layer, 0, {}, 2)
    assert draw_per_example(layer, {}, eps, torch.ones(3)) is eps
    recorder = Recorder()
    recorder.request("normal", (3,), torch.float32)
    with pytest.raises(ValueError, match="shapes"):
        recorder.request("normal", (2,), torch.float32)


def test_a_drawn_seed_hands_out_only_what_was_drawn():
    drawn = {"normal": torch.zeros(2, 3), "0": {"rademacher": torch.ones(4)}}
    assert seeded.normal(drawn, (2, 3)) is drawn["normal"]
    assert seeded.rademacher(seeded.stream(drawn, 0), (4,)) is drawn["0"]["rademacher"]
    with pytest.raises(FblitzTypeError, match="normal numbers of shape \\(3,\\)"):
        seeded.normal(drawn, (3,))
    with pytest.raises(FblitzTypeError, match="holds nothing|uniform"):
        seeded.uniform(drawn, (2, 3))
    with pytest.raises(FblitzTypeError, match="no stream 1"):
        seeded.stream(drawn, 1)

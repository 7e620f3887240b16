"""Flipout against its definition: explicit per-example weights in a plain loop.

Wen et al. (2018), eq. 3: example n sees the weights

    W_n = W_bar + dW o E_n,    E_n = r_n s_n^T

with W_bar the posterior mean, dW = sigma * eps one perturbation shared by the
batch, s_n random signs over the inputs and r_n over the outputs (for
convolutions one sign per channel, the same at every position). The
references below build each W_n as a matrix and evaluate example n alone with
torch's plain ops (``F.linear``, ``F.conv*``, the fused ``nn.LSTM``/``nn.GRU``/
``nn.RNN``), so nothing of fblitz's Flipout arithmetic is reused: a layer that
drops the input or the output signs, or flips them per batch instead of per
example, gives a different output for some example. (The marginals and the
decorrelation of examples, tested in ``test_estimators.py``, stay right for a
one-sided Flipout; these tests do not.)

Only the sign streams are fblitz's convention (``fblitz.layers.cells.FlipoutWeight``):
the signs of a weight tensor come from its int64 seed, stream 0 over the
inputs, stream 1 over the outputs; a recurrent layer derives one seed per
params entry, ``stream(seed, position of the entry)``.
"""

import pytest
import torch
import torch.nn.functional as F

from fblitz import layers
from fblitz.distributions import sigma
from fblitz.layers import sample_noise
from fblitz.seeded import rademacher, stream
from fblitz.tree import tree_map
from tests.helpers import randn
from tests.rnn_reference import torch_rnn

f64 = torch.float64
DRAWS = 3  # each draw has its own shared perturbation and signs


def draw(eps, i):
    return tree_map(lambda t: t[i], eps)


def signs(seed, index, shape):
    return rademacher(stream(seed, index), shape, dtype=f64)


def sampled(node, noise):
    return node["mu"] + sigma(node["rho"]) * noise


def flipout_weight(mu, delta, s_in, s_out, *, transposed=False, groups=1):
    """W_n = mu + delta o E_n for one example; delta, mu of a torch weight layout.

    ``s_in`` (C_in,) and ``s_out`` (C_out,) are the example's signs. The weight
    is (C_out, C_in / groups, *k), or (C_in, C_out / groups, *k) for a transposed
    convolution; within group g, column j of the weight is channel g * width + j.
    """
    rows, cols = (s_in, s_out) if transposed else (s_out, s_in)
    per_group = delta.shape[1]
    group_of_row = torch.arange(delta.shape[0]) // (delta.shape[0] // groups)
    column_signs = cols.reshape(groups, per_group)[group_of_row]  # (rows, per_group)
    pattern = rows[:, None] * column_signs
    return mu + delta * pattern.reshape(*pattern.shape, *([1] * (delta.dim() - 2)))


def test_linear_is_the_explicit_per_example_weight():
    layer = layers.linear(5, 4, posterior_rho_init=-1.0)
    params = layer.init(0, dtype=f64)
    x = randn(1, 2, 3, 5, dtype=f64)  # six examples in a (2, 3) batch
    eps = sample_noise(layer, 2, params, DRAWS, estimator="flipout")
    w, b = params["weight"], params["bias"]
    for i in range(DRAWS):
        e = draw(eps, i)
        delta, bias = sigma(w["rho"]) * e["weight"], sampled(b, e["bias"])
        s_in, s_out = signs(e["seed"], 0, (2, 3, 5)), signs(e["seed"], 1, (2, 3, 4))
        expected = torch.empty(2, 3, 4, dtype=f64)
        for n in range(2):
            for t in range(3):
                w_n = flipout_weight(w["mu"], delta, s_in[n, t], s_out[n, t])
                expected[n, t] = w_n @ x[n, t] + bias
        torch.testing.assert_close(layer.apply(params, x, e), expected, rtol=1e-12, atol=1e-12)


def test_examples_see_different_weights_and_the_bias_is_shared():
    # the reference must tell the examples apart: with identical inputs, each example's
    # output differs, and the mean over all 2^(in + out) sign patterns is the mean-weight output
    layer = layers.linear(3, 2, posterior_rho_init=0.0)
    params = layer.init(1, dtype=f64)
    e = draw(sample_noise(layer, 3, params, 1, estimator="flipout"), 0)
    x = torch.ones(16, 3, dtype=f64)
    out = layer.apply(params, x, e)
    assert len({tuple(row.tolist()) for row in out}) > 1
    shift = layer.apply(params, torch.zeros(1, 3, dtype=f64), e)  # zero input: the sampled bias only
    torch.testing.assert_close(shift[0], sampled(params["bias"], e["bias"]), rtol=1e-12, atol=1e-12)


CONVS = [
    # (constructor, in, out, kwargs, input shape)
    (layers.conv2d, 3, 4, dict(kernel_size=3, padding=1, stride=2), (3, 3, 7, 6)),
    (layers.conv1d, 4, 6, dict(kernel_size=2, groups=2, dilation=2), (5, 4, 9)),
    (layers.conv3d, 2, 3, dict(kernel_size=2, padding_mode="reflect", padding=1), (2, 2, 3, 4, 3)),
    (layers.conv_transpose2d, 4, 6, dict(kernel_size=3, stride=2, groups=2), (3, 4, 3, 4)),
    (layers.conv_transpose1d, 3, 2, dict(kernel_size=3, padding=1, output_padding=1, stride=2), (4, 3, 5)),
]


@pytest.mark.parametrize("make, c_in, c_out, kwargs, shape", CONVS, ids=lambda v: getattr(v, "__name__", None))
def test_convolution_is_the_explicit_per_example_weight(make, c_in, c_out, kwargs, shape):
    layer = make(c_in, c_out, posterior_rho_init=-1.0, **kwargs)
    params = layer.init(3, dtype=f64)
    x = randn(4, *shape, dtype=f64)
    n, spatial = shape[0], len(shape) - 2
    transposed, groups = "transpose" in make.__name__, kwargs.get("groups", 1)
    eps = sample_noise(layer, 5, params, DRAWS, estimator="flipout")
    w, b = params["weight"], params["bias"]
    for i in range(DRAWS):
        e = draw(eps, i)
        delta, bias = sigma(w["rho"]) * e["weight"], sampled(b, e["bias"])
        s_in, s_out = signs(e["seed"], 0, (n, c_in) + (1,) * spatial), signs(e["seed"], 1, (n, c_out) + (1,) * spatial)
        expected = []
        for k in range(n):
            signs_k = s_in[k].flatten(), s_out[k].flatten()
            w_k = flipout_weight(w["mu"], delta, *signs_k, transposed=transposed, groups=groups)
            expected.append(at_weights(layer, x[k : k + 1], w_k, bias))
        torch.testing.assert_close(layer.apply(params, x, e), torch.cat(expected), rtol=1e-12, atol=1e-12)


def at_weights(layer, x, weight, bias):
    """The layer's deterministic op (stride, padding, ...) at fixed weights: its output at means = weights."""
    fixed = {name: {"mu": t, "rho": torch.zeros_like(t)} for name, t in (("weight", weight), ("bias", bias))}
    return layer.apply(fixed, x, None)


def test_unbatched_convolution_input_is_one_example():
    layer = layers.conv2d(3, 6, 2, posterior_rho_init=-1.0)
    params = layer.init(6, dtype=f64)
    x = randn(7, 3, 4, 4, dtype=f64)
    e = draw(sample_noise(layer, 8, params, 1, estimator="flipout"), 0)
    delta, bias = sigma(params["weight"]["rho"]) * e["weight"], sampled(params["bias"], e["bias"])
    s_in, s_out = signs(e["seed"], 0, (3, 1, 1)), signs(e["seed"], 1, (6, 1, 1))
    assert s_in.unique().numel() == s_out.unique().numel() == 2  # both sides flip some channels
    w_1 = flipout_weight(params["weight"]["mu"], delta, s_in.flatten(), s_out.flatten())
    torch.testing.assert_close(layer.apply(params, x, e), F.conv2d(x, w_1, bias), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layout", ["one_layer", "stacked_bidirectional"])
def test_recurrent_layer_is_torch_with_each_sequences_weights(kind, layout):
    options = dict(num_layers=2, bidirectional=True) if layout != "one_layer" else {}
    layer = getattr(layers, kind)(3, 4, posterior_rho_init=-1.0, estimator="flipout", **options)
    params = layer.init(9, dtype=f64)
    x = randn(10, 5, 3, 3, dtype=f64)  # (L, N, H_in)
    reference = torch_rnn(kind, 3, 4, **options)
    eps = sample_noise(layer, 11, params, 2)
    for i in range(2):
        e = draw(eps, i)
        out, final = layer.apply(params, x, e)
        for n in range(x.shape[1]):
            weights = {}
            for position, (name, node) in enumerate(params.items()):
                if not name.startswith("weight"):
                    weights[name] = sampled(node, e[name])
                    continue
                seed = stream(e["seed"], position)
                rows, cols = node["mu"].shape
                s_in, s_out = signs(seed, 0, (x.shape[1], cols))[n], signs(seed, 1, (x.shape[1], rows))[n]
                weights[name] = flipout_weight(node["mu"], sigma(node["rho"]) * e[name], s_in, s_out)
            expected_out, expected_final = reference(weights, x[:, n : n + 1])
            torch.testing.assert_close(out[:, n : n + 1], expected_out, rtol=1e-10, atol=1e-12)
            finals = final if kind == "lstm" else (final,)
            expected_finals = expected_final if kind == "lstm" else (expected_final,)
            for got, want in zip(finals, expected_finals):
                torch.testing.assert_close(got[:, n : n + 1], want, rtol=1e-10, atol=1e-12)


def test_half_precision_flipout_stays_in_its_dtype():
    layer = layers.linear(4, 3, posterior_rho_init=-1.0, estimator="flipout")
    params = layer.init(0, dtype=torch.bfloat16)
    e = draw(sample_noise(layer, 1, params, 1), 0)
    x = randn(2, 5, 4).to(torch.bfloat16)
    out = layer.apply(params, x, e)
    assert out.dtype == torch.bfloat16
    wide = layer.apply(
        tree_map(lambda t: t.double(), params),
        x.double(),
        tree_map(lambda t: t.double() if t.is_floating_point() else t, e),
    )
    torch.testing.assert_close(out.double(), wide, rtol=0.05, atol=0.05)

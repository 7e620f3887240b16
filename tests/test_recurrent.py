"""Recurrent layers beyond the shared contract: argument errors, state conventions, peephole."""

import pytest
import torch
from torch.func import grad, vmap

from fblitz import layers, priors
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.posterior import sample_weights
from fblitz.random import sample_eps
from fblitz.tree import tree_map
from tests.helpers import randn
from tests.rnn_reference import peephole_loop


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_size": 0, "hidden_size": 2}, FblitzValueError, "input_size must be >= 1"),
        ({"input_size": 3, "hidden_size": 2.0}, FblitzTypeError, "hidden_size must be an int"),
        ({"input_size": 3, "hidden_size": 2, "num_layers": 0}, FblitzValueError, "num_layers must be >= 1"),
        ({"input_size": 3, "hidden_size": 2, "prior": 0.1}, FblitzTypeError, "prior must be a prior"),
        ({"input_size": 3, "hidden_size": 2, "prior_pi": 2.0}, FblitzValueError, r"pi must lie in \[0, 1\]"),
        ({"input_size": 3, "hidden_size": 2, "posterior_mu_std": -1}, FblitzValueError, "posterior_mu_std"),
    ],
)
@pytest.mark.parametrize("constructor", [layers.lstm, layers.gru, layers.rnn])
def test_constructor_argument_errors(constructor, kwargs, error, match):
    with pytest.raises(error, match=match):
        constructor(**kwargs)


@pytest.mark.parametrize("nonlinearity", ["sigmoid", "Tanh", None])
def test_rnn_refuses_an_unknown_nonlinearity_by_name(nonlinearity):
    with pytest.raises(
        FblitzValueError, match=rf"nonlinearity must be one of \('tanh', 'relu'\), got {nonlinearity!r}"
    ):
        layers.rnn(3, 2, nonlinearity=nonlinearity)


def test_rnn_repr_and_param_errors_name_the_rnn():
    layer = layers.rnn(3, 2, nonlinearity="relu", bidirectional=True)
    assert repr(layer) == "Layer(rnn(3, 2, nonlinearity='relu', bidirectional=True))"
    with pytest.raises(FblitzValueError, match="params is missing 'weight_ih_l0_reverse'.* for rnn"):
        layer.apply(layers.rnn(3, 2).init(0), randn(0, 4, 2, 3))


def test_options_after_hidden_size_are_keyword_only_and_dropout_is_not_offered():
    with pytest.raises(TypeError):
        layers.lstm(3, 2, 2)
    with pytest.raises(TypeError):
        layers.gru(3, 2, dropout=0.5)


@pytest.mark.parametrize(
    ("x", "state", "error", "match"),
    [
        (randn(0, 4, 2, 5), None, FblitzValueError, "x must have 3 features in its last dimension"),
        (randn(0, 3), None, FblitzValueError, r"x must have 2 or 3 dimension\(s\)"),
        (torch.ones(4, 2, 3, dtype=torch.long), None, FblitzTypeError, "x must be a floating-point tensor"),
        (randn(0, 0, 2, 3), None, FblitzValueError, "at least one time step"),
        (randn(0, 4, 2, 3), randn(1, 2, 2), FblitzTypeError, r"state of an LSTM must be a tuple \(h0, c0\)"),
        (randn(0, 4, 2, 3), (randn(1, 1, 2, 2),), FblitzTypeError, "must be a tuple"),
        (randn(0, 4, 2, 3), (randn(1, 1, 2, 2), randn(2, 1, 3, 2)), FblitzValueError, r"state\[1\] \(c0\)"),
        (randn(0, 4, 3), (randn(1, 1, 2, 2), randn(2, 1, 2, 2)), FblitzValueError, r"got \(1, 2, 2\)"),
        (
            randn(0, 4, 2, 3),
            (randn(1, 1, 2, 2, dtype=torch.float64), randn(2, 1, 2, 2)),
            FblitzTypeError,
            "must have the input's dtype",
        ),
    ],
)
def test_lstm_apply_argument_errors(x, state, error, match):
    layer = layers.lstm(3, 2)
    with pytest.raises(error, match=match):
        layer.apply(layer.init(0), x, None, state)


def test_gru_state_is_one_tensor_and_params_must_match():
    layer = layers.gru(3, 2, num_layers=2)
    params = layer.init(0)
    x = randn(0, 4, 2, 3)
    with pytest.raises(FblitzTypeError, match="state must be a torch.Tensor"):
        layer.apply(params, x, None, (randn(1, 2, 2, 2),))
    with pytest.raises(FblitzValueError, match=r"state must have the shape .* \(2, 2, 2\), got \(1, 2, 2\)"):
        layer.apply(params, x, None, randn(1, 1, 2, 2))
    with pytest.raises(FblitzValueError, match="params is missing 'weight_ih_l1'.* for gru"):
        layer.apply(layers.gru(3, 2).init(0), x)
    eps = sample_eps(1, params)
    eps["weight_hh_l1"] = eps["weight_hh_l1"][:, :1]
    with pytest.raises(FblitzValueError, match="eps must match mu's shape"):
        layer.apply(params, x, eps)
    with pytest.raises(FblitzValueError, match="eps of gru must be a dict with keys"):
        layer.apply(params, x, sample_eps(1, layers.gru(3, 2).init(0)))
    assert repr(layer) == "Layer(gru(3, 2, num_layers=2))"
    assert layers.lstm(3, 2, bias=False, peephole=True).name == "lstm(3, 2, bias=False, peephole=True)"


def test_param_names_and_shapes_follow_torch():
    params = layers.lstm(3, 5, num_layers=2, bidirectional=True).init(0)
    module = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, device="meta")
    shapes = {name: tuple(p.shape) for name, p in module.named_parameters()}
    assert tree_map(lambda t: tuple(t.shape), params) == {n: {"mu": s, "rho": s} for n, s in shapes.items()}
    assert sorted(layers.gru(3, 5, bias=False).init(0)) == ["weight_hh_l0", "weight_ih_l0"]


def test_blitz_defaults_for_recurrent_layers():
    layer = layers.gru(3, 4)
    params = layer.init(0)
    prior = layer.priors["weight_ih_l0"]
    assert (prior.pi, prior.sigma1, prior.sigma2) == (1.0, 0.1, 0.002)
    assert abs(float(params["weight_hh_l0"]["rho"].mean()) + 6.0) < 0.05
    custom = layers.lstm(3, 4, prior=priors.gaussian(1.0)).priors
    assert all(p == priors.gaussian(1.0) for p in custom.values())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_h_n_is_the_last_output_step_of_each_direction(kind, batch_first):
    layer = getattr(layers, kind)(3, 4, num_layers=2, bidirectional=True, batch_first=batch_first)
    params = layer.init(0)
    x = randn(1, 2, 5, 3) if batch_first else randn(1, 5, 2, 3)
    output, final = layer.apply(params, x, sample_eps(2, params))
    h_n = final[0] if kind == "lstm" else final
    time_major = output.transpose(0, 1) if batch_first else output
    assert h_n.shape == (4, 2, 4)
    torch.testing.assert_close(time_major[-1, :, :4], h_n[2], rtol=0, atol=0)  # last layer, forward
    torch.testing.assert_close(time_major[0, :, 4:], h_n[3], rtol=0, atol=0)  # last layer, reverse


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_weights_are_drawn_once_per_sequence(kind):
    # one call on the whole sequence equals two calls on its halves, threading the
    # state, with the same eps: every time step used the same weight draw.
    layer = getattr(layers, kind)(3, 4, num_layers=2)
    params = layer.init(0)
    eps = sample_eps(3, params)
    x = randn(2, 6, 2, 3)
    whole, final = layer.apply(params, x, eps)
    first, middle = layer.apply(params, x[:3], eps)
    second, final_2 = layer.apply(params, x[3:], eps, middle)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    torch.testing.assert_close(final_2, final)


def test_unbatched_equals_a_batch_of_one():
    layer = layers.lstm(3, 4, bidirectional=True)
    params = layer.init(0)
    eps = sample_eps(1, params)
    x = randn(2, 5, 3)
    out, (h, c) = layer.apply(params, x, eps)
    out_1, (h_1, c_1) = layer.apply(params, x.unsqueeze(1), eps)
    torch.testing.assert_close((out, h, c), (out_1.squeeze(1), h_1.squeeze(1), c_1.squeeze(1)))


def test_peephole_matches_a_hand_loop_with_sampled_weights_and_differs_from_lstm():
    layer = layers.lstm(3, 4, peephole=True, posterior_rho_init=-2.0)
    params = layer.init(0, dtype=torch.float64)
    eps = sample_eps(4, params)
    x = randn(5, 6, 2, 3, dtype=torch.float64)
    state = (randn(6, 1, 2, 4, dtype=torch.float64), randn(7, 1, 2, 4, dtype=torch.float64))
    expected = peephole_loop(sample_weights(params, eps), x, state)
    torch.testing.assert_close(layer.apply(params, x, eps, state), expected)
    plain, _ = layers.lstm(3, 4).apply(params, x, eps, state)
    assert not torch.allclose(plain, expected[0])


def test_per_sample_gradients_under_vmap_of_grad():
    layer = layers.gru(3, 2, batch_first=True)
    params = layer.init(0)
    eps = sample_eps(5, params, 3)
    x = randn(6, 2, 4, 3)

    def loss(p, e):
        return layer.apply(p, x, e)[0].square().sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0))(params, eps)
    for i in range(3):
        alone = grad(loss)(params, tree_map(lambda t, i=i: t[i], eps))
        torch.testing.assert_close(tree_map(lambda t, i=i: t[i], per_sample), alone)

import pytest
import torch
import torch.nn.functional as F
from torch.func import vmap

from fblitz import layers, priors
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.random import sample_eps
from tests.helpers import assert_trees_equal, clone_tree, mlp, randn, to_double


def test_linear_params_tree_and_blitz_initialisation():
    layer = layers.linear(13, 512)
    params = layer.init(0)
    assert params["weight"]["mu"].shape == (512, 13) and params["bias"]["rho"].shape == (512,)
    # BLiTZ: mu ~ N(0, 0.1^2), rho ~ N(-7, 0.1^2); 6656 draws give means within 0.01.
    mu, rho = params["weight"]["mu"], params["weight"]["rho"]
    assert abs(float(mu.mean())) < 0.01 and abs(float(mu.std()) - 0.1) < 0.01
    assert abs(float(rho.mean()) + 7) < 0.01 and abs(float(rho.std()) - 0.1) < 0.01
    assert layer.priors["weight"] == priors.blitz_default()


def test_linear_without_bias():
    layer = layers.linear(3, 2, bias=False)
    params = layer.init(0)
    assert set(params) == {"weight"}
    x = randn(1, 4, 3)
    assert torch.equal(layer.apply(params, x), x @ params["weight"]["mu"].T)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_noise_equals_torch_linear_with_the_means(dtype):
    layer = layers.linear(5, 3)
    params = layer.init(1, dtype=dtype)
    x = randn(2, 7, 5, dtype=dtype)
    zero = {name: torch.zeros_like(node["mu"]) for name, node in params.items()}
    expected = F.linear(x, params["weight"]["mu"], params["bias"]["mu"])
    assert torch.equal(layer.apply(params, x, zero), expected)
    assert torch.equal(layer.apply(params, x, None), expected)


def test_noise_enters_as_mu_plus_sigma_eps():
    layer = layers.linear(4, 2, posterior_rho_init=0.0)
    params = layer.init(0, dtype=torch.float64)
    eps = sample_eps(3, params)
    x = randn(4, 6, 4, dtype=torch.float64)
    w = params["weight"]["mu"] + F.softplus(params["weight"]["rho"]) * eps["weight"]
    b = params["bias"]["mu"] + F.softplus(params["bias"]["rho"]) * eps["bias"]
    assert torch.allclose(layer.apply(params, x, eps), x @ w.T + b, rtol=1e-12)


def test_freeze_uses_the_means_whatever_the_noise():
    frozen = layers.linear(3, 2, freeze=True, posterior_rho_init=0.0)
    params = frozen.init(0)
    x = randn(1, 5, 3)
    eps = sample_eps(2, params)
    assert torch.equal(frozen.apply(params, x, eps), frozen.apply(params, x, None))
    wrapped = layers.freeze(layers.linear(3, 2))
    assert torch.equal(wrapped.apply(params, x, eps), frozen.apply(params, x, None))


def test_vmap_sample_i_equals_the_layer_alone():
    model = mlp(3, 16, 16, 2, posterior_rho_init=-2.0)
    params = model.init(0)
    eps = sample_eps(1, params, 5)
    x = randn(2, 8, 3)
    batched = vmap(model.apply, in_dims=(None, None, 0))(params, x, eps)
    for i in range(5):
        alone = model.apply(params, x, {k: ({n: e[i] for n, e in v.items()} if v else {}) for k, v in eps.items()})
        assert torch.allclose(batched[i], alone, rtol=1e-6, atol=1e-6)


def test_apply_does_not_mutate_its_inputs():
    model = mlp(3, 4, 1)
    params = model.init(0)
    eps = sample_eps(1, params, 2)
    x = randn(2, 5, 3)
    before = (clone_tree(params), clone_tree(eps), x.clone())
    vmap(model.apply, in_dims=(None, None, 0))(params, x, eps)
    assert_trees_equal(params, before[0])
    assert_trees_equal(eps, before[1])
    assert torch.equal(x, before[2])


def test_gradcheck_float64():
    layer = layers.linear(3, 2, posterior_rho_init=-1.0)
    params = to_double(layer.init(0))
    eps = sample_eps(1, params)
    x = randn(3, 4, 3, dtype=torch.float64)

    def fn(w_mu, w_rho, b_mu, b_rho, inputs):
        p = {"weight": {"mu": w_mu, "rho": w_rho}, "bias": {"mu": b_mu, "rho": b_rho}}
        return layer.apply(p, inputs, eps)

    args = [params["weight"]["mu"], params["weight"]["rho"], params["bias"]["mu"], params["bias"]["rho"], x]
    assert torch.autograd.gradcheck(fn, [a.clone().requires_grad_() for a in args])


def test_input_validation_names_the_argument():
    layer = layers.linear(3, 2)
    params = layer.init(0)
    with pytest.raises(FblitzValueError, match="x must have 3 features in its last dimension"):
        layer.apply(params, randn(0, 4, 5))
    with pytest.raises(FblitzTypeError, match="x must be a floating-point tensor"):
        layer.apply(params, torch.ones(4, 3, dtype=torch.int64))
    with pytest.raises(FblitzValueError, match="eps must match mu's shape"):
        layer.apply(params, randn(0, 4, 3), {"weight": torch.zeros(3, 2), "bias": torch.zeros(2)})
    with pytest.raises(FblitzValueError, match="in_features must be >= 1"):
        layers.linear(0, 2)
    with pytest.raises(FblitzTypeError, match="posterior_rho_init must be a real number"):
        layers.linear(2, 2, posterior_rho_init="low")
    with pytest.raises(FblitzTypeError, match="prior must be a prior"):
        layers.linear(2, 2, prior=0.1)


def test_serial_composes_and_checks_its_params():
    model = layers.serial(layers.linear(2, 3), torch.tanh, layers.linear(3, 1))
    params = model.init(0)
    assert set(params) == {"0", "1", "2"} and params["1"] == {}
    x = randn(0, 4, 2)
    hidden = torch.tanh(F.linear(x, params["0"]["weight"]["mu"], params["0"]["bias"]["mu"]))
    expected = F.linear(hidden, params["2"]["weight"]["mu"], params["2"]["bias"]["mu"])
    assert torch.allclose(model.apply(params, x), expected)
    with pytest.raises(
        FblitzValueError, match=r"params is missing '1', '2' for serial.*expected keys \['0', '1', '2'\]"
    ):
        model.apply({"0": params["0"]}, x)
    with pytest.raises(FblitzTypeError, match="layer 0 of serial"):
        layers.serial(3)
    with pytest.raises(FblitzValueError):
        layers.serial()


def test_init_is_reproducible_and_follows_dtype():
    model = mlp(3, 4, 1)
    assert_trees_equal(model.init(5), model.init(5))
    assert model.init(5, dtype=torch.float64)["0"]["weight"]["mu"].dtype == torch.float64


def test_learned_noise_appends_a_positive_scale_column():
    layer = layers.learned_noise(2, init_sigma=0.3)
    params = layer.init()
    out = layer.apply(params, randn(0, 5, 2))
    assert out.shape == (5, 4)
    assert torch.allclose(F.softplus(out[:, 2:]), torch.full((5, 2), 0.3))
    assert layer.priors == {"noise_rho": None}


def test_stateless_and_flatten():
    assert torch.equal(layers.relu.apply({}, torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 2.0]))
    assert layers.flatten().apply({}, torch.zeros(2, 3, 4)).shape == (2, 12)
    with pytest.raises(FblitzTypeError):
        layers.stateless(5)


def test_weight_layers_reject_non_finite_and_mismatched_inputs():
    from fblitz.errors import NonFiniteError

    layer = layers.linear(3, 2)
    params = layer.init(0)
    with pytest.raises(NonFiniteError, match="x contains NaN"):
        layer.apply(params, torch.tensor([[1.0, float("nan"), 0.0]]))
    with pytest.raises(FblitzTypeError, match="x must have the params' dtype torch.float32"):
        layer.apply(params, torch.zeros(1, 3, dtype=torch.float64))
    conv = layers.conv1d(1, 1, 2)
    with pytest.raises(NonFiniteError):
        conv.apply(conv.init(0), torch.full((1, 1, 4), float("inf")))

"""Bayesian convolutions and transposed convolutions beyond the registry contract."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import vmap

from fblitz import layers, priors
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.kl import kl_divergence
from fblitz.random import sample_eps
from tests import blitz_reference
from tests.helpers import randn


@pytest.mark.parametrize(
    "make, weight_shape, rho",
    [
        (lambda: layers.conv1d(16, 32, 9), (32, 16, 9), -7.0),
        (lambda: layers.conv2d(16, 32, 3), (32, 16, 3, 3), -6.0),
        (lambda: layers.conv3d(8, 16, (3, 2, 3), groups=2), (16, 4, 3, 2, 3), -6.0),
        (lambda: layers.conv_transpose2d(16, 32, 3, groups=4), (16, 8, 3, 3), -6.0),
    ],
)
def test_blitz_default_initialisation(make, weight_shape, rho):
    layer = make()
    params = layer.init(0)
    # BLiTZ: mu ~ N(0, 0.1^2); rho ~ N(-6, 0.1^2) (conv1d: -7); >= 2304 draws give means within 0.01.
    mu, r = params["weight"]["mu"], params["weight"]["rho"]
    assert tuple(mu.shape) == weight_shape
    assert abs(float(mu.mean())) < 0.01 and abs(float(mu.std()) - 0.1) < 0.01
    assert abs(float(r.mean()) - rho) < 0.01 and abs(float(r.std()) - 0.1) < 0.01
    assert layer.priors["weight"] == priors.scale_mixture(1.0, 0.1, 0.002) == layer.priors["bias"]


def test_bias_shapes_and_no_bias():
    assert layers.conv2d(4, 6, 3).init(0)["bias"]["mu"].shape == (6,)
    assert layers.conv_transpose1d(4, 6, 3, groups=2).init(0)["bias"]["mu"].shape == (6,)
    assert set(layers.conv3d(2, 2, 1, bias=False).init(0)) == {"weight"}


def test_noise_enters_as_mu_plus_sigma_eps():
    layer = layers.conv2d(3, 4, 3, stride=2, padding=1, posterior_rho_init=0.0)
    params = layer.init(0, dtype=torch.float64)
    eps = sample_eps(1, params)
    x = randn(2, 2, 3, 7, 6, dtype=torch.float64)
    w, b = (
        (p["mu"] + F.softplus(p["rho"]) * e)
        for p, e in ((params["weight"], eps["weight"]), (params["bias"], eps["bias"]))
    )
    torch.testing.assert_close(layer.apply(params, x, eps), F.conv2d(x, w, b, 2, 1), rtol=1e-12, atol=1e-12)


def test_freeze_and_op_is_the_deterministic_forward():
    layer = layers.conv1d(2, 3, 3, padding="same", padding_mode="reflect", freeze=True, posterior_rho_init=0.0)
    params = layer.init(0)
    x = randn(3, 4, 2, 8)
    expected = F.conv1d(F.pad(x, (1, 1), mode="reflect"), params["weight"]["mu"], params["bias"]["mu"])
    torch.testing.assert_close(layer.apply(params, x, sample_eps(1, params)), expected)


def test_unbatched_input_matches_batch_of_one():
    for layer, x in (
        (layers.conv2d(2, 3, 2, dilation=2), randn(4, 2, 5, 5)),
        (layers.conv_transpose1d(2, 3, 2), randn(5, 2, 4)),
    ):
        params = layer.init(1)
        eps = sample_eps(2, params)
        torch.testing.assert_close(layer.apply(params, x, eps), layer.apply(params, x[None], eps)[0])


def test_vmap_over_inputs_and_noise():
    layer = layers.conv2d(2, 3, 3, padding=1)
    params = layer.init(0)
    x, eps = randn(6, 4, 2, 5, 5), sample_eps(3, params, 2)
    per_sample = vmap(vmap(layer.apply, in_dims=(None, 0, None)), in_dims=(None, None, 0))(params, x, eps)
    whole = vmap(layer.apply, in_dims=(None, None, 0))(params, x, eps)
    torch.testing.assert_close(per_sample, whole)


BAD_ARGUMENTS = [
    (layers.conv2d, (0, 4, 3), {}, FblitzValueError, "in_channels"),
    (layers.conv2d, (2, 4.0, 3), {}, FblitzTypeError, "out_channels"),
    (layers.conv2d, (2, 4, 0), {}, FblitzValueError, "kernel_size"),
    (layers.conv2d, (2, 4, (3,)), {}, FblitzValueError, "kernel_size"),
    (layers.conv2d, (2, 4, 2.5), {}, FblitzTypeError, "kernel_size"),
    (layers.conv1d, (2, 4, 3), {"stride": 0}, FblitzValueError, "stride"),
    (layers.conv1d, (2, 4, 3), {"padding": -1}, FblitzValueError, "padding"),
    (layers.conv1d, (2, 4, 3), {"padding": "full"}, FblitzValueError, "padding"),
    (layers.conv1d, (2, 4, 3), {"padding": "same", "stride": 2}, FblitzValueError, "padding='same'"),
    (layers.conv3d, (2, 4, 3), {"dilation": (1, 0, 1)}, FblitzValueError, "dilation"),
    (layers.conv2d, (3, 4, 3), {"groups": 2}, FblitzValueError, "in_channels must be divisible by groups"),
    (layers.conv2d, (2, 3, 3), {"groups": 2}, FblitzValueError, "out_channels must be divisible by groups"),
    (layers.conv2d, (2, 4, 3), {"padding_mode": "mirror"}, FblitzValueError, "padding_mode"),
    (layers.conv2d, (2, 4, 3), {"freeze": "yes"}, FblitzTypeError, "freeze"),
    (layers.conv2d, (2, 4, 3), {"prior": 0.1}, FblitzTypeError, "prior"),
    (layers.conv2d, (2, 4, 3), {"prior_pi": 2.0}, FblitzValueError, "prior_pi"),
    (layers.conv2d, (2, 4, 3), {"posterior_mu_std": -1.0}, FblitzValueError, "posterior_mu_std"),
    (layers.conv_transpose2d, (2, 4, 3), {"stride": 2, "output_padding": 2}, FblitzValueError, "output_padding"),
    (layers.conv_transpose1d, (2, 4, 3), {"output_padding": 1, "dilation": 1}, FblitzValueError, "output_padding"),
    (layers.conv_transpose1d, (2, 4, 3), {"padding": "same"}, FblitzTypeError, "padding"),
    (layers.conv_transpose1d, (2, 4, 3), {"padding_mode": "reflect"}, FblitzValueError, "padding_mode"),
]


@pytest.mark.parametrize("constructor, args, kwargs, error, match", BAD_ARGUMENTS)
def test_bad_arguments_raise_naming_the_argument(constructor, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        constructor(*args, **kwargs)


def test_output_padding_below_dilation_is_accepted():
    layer = layers.conv_transpose1d(1, 1, 2, stride=1, dilation=3, output_padding=2)
    assert layer.apply(layer.init(0), randn(0, 1, 1, 4)).shape == (1, 1, 9)


BAD_INPUTS = [
    (layers.conv2d(2, 3, 3), randn(0, 2, 5), FblitzValueError, "spatial"),
    (layers.conv2d(2, 3, 3), randn(0, 1, 2, 2, 5, 5), FblitzValueError, "spatial"),
    (layers.conv2d(2, 3, 3), randn(0, 1, 3, 5, 5), FblitzValueError, "2 channels in dimension -3"),
    (layers.conv1d(2, 3, 3), torch.ones(1, 2, 5, dtype=torch.int64), FblitzTypeError, "floating"),
    (layers.conv1d(2, 3, 3), [[1.0] * 5] * 2, FblitzTypeError, "torch.Tensor"),
    (layers.conv1d(2, 3, 5, dilation=2), randn(0, 1, 2, 8), FblitzValueError, "dilated kernel size 9"),
    (layers.conv1d(2, 3, 3, padding=3, padding_mode="reflect"), randn(0, 1, 2, 3), FblitzValueError, "reflect"),
    (layers.conv_transpose1d(2, 3, 2, padding=2), randn(0, 1, 2, 2), FblitzValueError, "empty output"),
    (layers.conv_transpose1d(2, 3, 2), randn(0, 1, 3, 2), FblitzValueError, "2 channels"),
]


@pytest.mark.parametrize("layer, x, error, match", BAD_INPUTS)
def test_bad_inputs_raise(layer, x, error, match):
    with pytest.raises(error, match=match):
        layer.apply(layer.init(0), x)


def test_params_and_priors_follow_dtype():
    params = layers.conv_transpose3d(2, 2, 1).init(0, dtype=torch.float64)
    assert all(node[part].dtype == torch.float64 for node in params.values() for part in ("mu", "rho"))


# --- BLiTZ itself, on the same mu/rho and the same noise --------------------------------------------


def _blitz_pair(cls_name, ours, *args, **kwargs):
    blitz_modules = pytest.importorskip("blitz.modules")
    theirs = blitz_reference.build(getattr(blitz_modules, cls_name), *args, **kwargs)
    params = ours.init(3, dtype=torch.float64)
    blitz_reference.load(theirs, params)
    return params, theirs


@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_equals_blitz_on_the_same_noise(monkeypatch, bias):
    ours = layers.conv2d(
        4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2, bias=bias, posterior_rho_init=-3.0
    )
    params, theirs = _blitz_pair(
        "BayesianConv2d", ours, 4, 6, (3, 2), groups=2, stride=2, padding=1, dilation=(1, 2), bias=bias
    )
    x = randn(4, 3, 4, 7, 8, dtype=torch.float64)
    y, eps = blitz_reference.forward_with_noise(monkeypatch, theirs, x, list(params))
    torch.testing.assert_close(ours.apply(params, x, eps), y, rtol=1e-12, atol=1e-12)
    blitz_kl = (theirs.log_variational_posterior - theirs.log_prior).detach()
    # BLiTZ adds 1e-6 to the prior density; relative effect well under 1e-5 here.
    torch.testing.assert_close(kl_divergence(params, ours.priors, eps, mode="monte_carlo"), blitz_kl, rtol=1e-5, atol=0)
    torch.testing.assert_close(ours.apply(params, x, None), blitz_reference.frozen_forward(theirs, params, x))


def test_conv1d_equals_blitz_on_the_same_noise(monkeypatch):
    ours = layers.conv1d(2, 3, 3, padding=2, dilation=2, posterior_rho_init=-3.0)
    params, theirs = _blitz_pair("BayesianConv1d", ours, 2, 3, 3, padding=2, dilation=2)
    x = randn(5, 2, 2, 9, dtype=torch.float64)
    y, eps = blitz_reference.forward_with_noise(monkeypatch, theirs, x, list(params))
    torch.testing.assert_close(ours.apply(params, x, eps), y, rtol=1e-12, atol=1e-12)

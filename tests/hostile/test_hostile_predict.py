"""Hostile inputs to ``predict``, ``predict_with_eps``, the predictor and the summaries."""

import pytest
import torch

from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteError
from fblitz.layers import sample_noise
from fblitz.prediction import predict, predict_with_eps, predictive_mean_std, quantile_interval
from fblitz.predictor import make_predictor
from fblitz.tree import tree_map
from tests.helpers import mlp, randn
from tests.hostile._expect import refuses

MODEL = mlp(3, 4, 1)
PARAMS = MODEL.init(0)
X = randn(1, 6, 3)


def _predict(params=PARAMS, x=X, **options):
    options.setdefault("key", 0)
    options.setdefault("n_samples", 3)
    return predict(MODEL, params, x, **options)


REFUSED = {
    "params-none": (lambda: _predict(params=None), FblitzTypeError, ("params", "None")),
    "params-module": (lambda: _predict(params=torch.nn.Identity()), FblitzTypeError, ("params", "Identity")),
    "n-samples-zero": (lambda: _predict(n_samples=0), FblitzValueError, ("n_samples", ">= 1")),
    "n-samples-float": (lambda: _predict(n_samples=2.0), FblitzTypeError, ("n_samples", "2.0")),
    "batch-size-zero": (lambda: _predict(batch_size=0), FblitzValueError, ("batch_size",)),
    "sample-batch-size": (lambda: _predict(sample_batch_size=-2), FblitzValueError, ("sample_batch_size",)),
    "key-float": (lambda: _predict(key=1.5), FblitzTypeError, ("key", "1.5")),
    "estimator-unknown": (lambda: _predict(estimator="mc"), FblitzValueError, ("estimator", "'mc'")),
    "inputs-nan": (lambda: _predict(x=torch.full((2, 3), float("nan"))), NonFiniteError, ("inputs", "NaN")),
    "inputs-float64": (lambda: _predict(x=X.double()), FblitzTypeError, ("inputs", "torch.float64")),
    "eps-float64": (lambda: predict_with_eps(MODEL, PARAMS, X, tree_map(torch.Tensor.double, _eps())),
                    FblitzTypeError, ("eps", "torch.float32", "torch.float64")),
    "eps-sample-counts-differ": (lambda: predict_with_eps(MODEL, PARAMS, X, {**_eps(), "2": _eps(5)["2"]}),
                                 FblitzValueError, ("eps", "[3, 5]")),
    "mean-std-one-draw": (lambda: predictive_mean_std(torch.zeros(1, 4)), FblitzValueError, ("samples", "2 draws")),
    "mean-std-unbiased-string": (lambda: predictive_mean_std(torch.zeros(3, 4), unbiased="yes"), FblitzTypeError,
                                 ("unbiased", "'yes'")),
    "quantile-level": (lambda: quantile_interval(torch.zeros(5, 2), level=1.5), FblitzValueError, ("level", "1.5")),
    "predictor-compile-string": (lambda: make_predictor(MODEL, compile="no"), FblitzTypeError, ("compile", "'no'")),
    "predictor-params-none": (lambda: make_predictor(MODEL)(None, X, key=0), FblitzTypeError, ("params", "None")),
}  # fmt: skip


def _eps(count=3):
    return sample_noise(MODEL, 1, PARAMS, count)


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_refuses(case):
    call, error, names = case
    refuses(call, error, *names)


def test_correct_meta_params_predict_shapes_without_reading_values():
    meta = tree_map(lambda t: t.to("meta"), PARAMS)
    eps = tree_map(lambda t: t.to("meta"), _eps(4))
    out = predict_with_eps(MODEL, meta, torch.zeros(6, 3, device="meta"), eps)
    assert out.device.type == "meta" and tuple(out.shape) == (4, 6, 1)


def test_correct_groups_of_rows_and_draws_do_not_change_the_draws():
    whole = _predict(n_samples=5)
    grouped = _predict(n_samples=5, batch_size=4, sample_batch_size=2)
    torch.testing.assert_close(grouped, whole, rtol=1e-6, atol=1e-6)

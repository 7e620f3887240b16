"""Hostile inputs to ``fit`` and ``make_train_step``: each is a clear error or a correct result."""

import pytest
import torch

from fblitz import layers, likelihoods, optim
from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteError, NonFiniteStepError
from fblitz.layers import estimator_usage
from fblitz.train import fit, make_train_step
from tests.helpers import assert_trees_equal, mlp, randn
from tests.hostile._expect import refuses

MODEL = mlp(3, 4, 1)
X, Y = randn(1, 8, 3), randn(2, 8, 1)


def _fit(model=MODEL, params=None, x=X, y=Y, **options):
    settings = dict(likelihood=likelihoods.gaussian(), optimizer=optim.adam(1e-2), key=0, epochs=1, batch_size=4)
    settings["progress"] = False
    settings.update(options)
    return fit(model, model.init(0) if params is None else params, x, y, **settings)


def _lstm_only():
    return layers.serial(layers.lstm(3, 4, batch_first=True), lambda out: out[0][:, -1])


REFUSED = {
    "shuffle-string": (lambda: _fit(shuffle="no"), FblitzTypeError, ("shuffle", "'no'")),
    "shuffle-int": (lambda: _fit(shuffle=0), FblitzTypeError, ("shuffle", "True or False")),
    "compile-string": (lambda: _fit(compile="false"), FblitzTypeError, ("compile", "'false'")),
    "progress-string": (lambda: _fit(progress="quiet"), FblitzTypeError, ("progress", "True or False")),
    "params-none": (lambda: fit(MODEL, None, X, Y, likelihood=likelihoods.gaussian(), optimizer=optim.adam(1e-2),
                                key=0, epochs=1, batch_size=4), FblitzTypeError, ("params", "None")),
    "params-tensor": (lambda: _fit(params=torch.ones(3)), FblitzTypeError, ("params", "tensor")),
    "params-empty": (lambda: _fit(params={}), FblitzValueError, ("params", "missing")),
    "epochs-negative": (lambda: _fit(epochs=-1), FblitzValueError, ("epochs", "-1")),
    "epochs-float": (lambda: _fit(epochs=2.5), FblitzTypeError, ("epochs", "2.5")),
    "epochs-before-start": (lambda: _fit(epochs=2, start_epoch=3), FblitzValueError, ("epochs", ">= 3")),
    "batch-size-zero": (lambda: _fit(batch_size=0), FblitzValueError, ("batch_size", "0")),
    "n-samples-zero": (lambda: _fit(n_samples=0), FblitzValueError, ("n_samples", "0")),
    "n-samples-bool": (lambda: _fit(n_samples=True), FblitzTypeError, ("n_samples", "True")),
    "both-sample-counts": (lambda: _fit(n_samples=2, sample_nbr=2), FblitzValueError, ("n_samples", "sample_nbr")),
    "kl-weight-nan": (lambda: _fit(complexity_cost_weight=float("nan")), FblitzValueError,
                      ("complexity_cost_weight", "finite")),
    "kl-weight-negative": (lambda: _fit(complexity_cost_weight=-1.0), FblitzValueError,
                           ("complexity_cost_weight", ">= 0")),
    "kl-weighting-unknown": (lambda: _fit(kl_weighting="exp"), FblitzValueError, ("kl_weighting", "'exp'")),
    "kl-mode-unknown": (lambda: _fit(kl_mode="exact"), FblitzValueError, ("kl_mode", "'exact'")),
    "estimator-unknown": (lambda: _fit(estimator="flip"), FblitzValueError, ("estimator", "'flip'")),
    "estimator-no-layer-uses": (
        lambda: _fit(_lstm_only(), x=randn(3, 8, 5, 3), y=randn(4, 8, 4), estimator="local_reparameterization"),
        FblitzValueError, ("estimator='local_reparameterization'", "no layer", "0 reparameterization"),
    ),
    "on-nonfinite-unknown": (lambda: _fit(on_nonfinite="ignore"), FblitzValueError, ("on_nonfinite", "'ignore'")),
    "checkpoint-every-zero": (lambda: _fit(checkpoint_every=0), FblitzValueError, ("checkpoint_every", "0")),
    "checkpoint-dir-missing": (lambda: _fit(checkpoint_path="/nonexistent-dir/run.ckpt"), FblitzValueError,
                               ("checkpoint_path", "/nonexistent-dir")),
    "optimizer-torch": (lambda: _fit(optimizer=torch.optim.Adam), FblitzTypeError, ("optimizer", "from_torchopt")),
    "likelihood-none": (lambda: _fit(likelihood=None), FblitzTypeError, ("likelihood", "None")),
    "likelihood-string": (lambda: _fit(likelihood="mse"), FblitzTypeError, ("likelihood", "'mse'")),
    "key-string": (lambda: _fit(key="0"), FblitzTypeError, ("key", "'0'")),
    "callback-string": (lambda: _fit(callback="print"), FblitzTypeError, ("callback", "'print'")),
    "rows-differ": (lambda: _fit(y=randn(2, 7, 1)), FblitzValueError, ("inputs", "targets", "(8, 3)", "(7, 1)")),
    "no-rows": (lambda: _fit(x=torch.zeros(0, 3), y=torch.zeros(0, 1)), FblitzValueError, ("inputs", "one row")),
    "inputs-float64": (lambda: _fit(x=X.double()), FblitzTypeError, ("inputs", "torch.float64", "torch.float32")),
    "inputs-nan": (lambda: _fit(x=X.clone().index_fill_(0, torch.tensor([2]), float("nan"))), NonFiniteError,
                   ("inputs", "NaN")),
    "targets-inf": (lambda: _fit(y=Y.clone().index_fill_(0, torch.tensor([0]), float("inf"))), NonFiniteError,
                    ("targets", "infinity")),
    "inputs-list": (lambda: _fit(x=X.tolist()), FblitzTypeError, ("inputs", "torch.Tensor", "list")),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_refuses(case):
    call, error, names = case
    refuses(call, error, *names)


def test_refuses_rho_that_underflows_naming_the_tensor_and_the_safe_range():
    params = MODEL.init(0)
    params["2"]["weight"]["rho"] = torch.full((1, 4), -1e4)
    message = refuses(lambda: _fit(params=params), NonFiniteStepError, "rho at '2.weight'", "-1e+04", "(-87.3,")
    assert "use float64" not in message.split("(")[0]


def test_refuses_train_step_compile_flag_that_is_not_a_bool():
    refuses(
        lambda: make_train_step(MODEL, likelihoods.gaussian(), optim.adam(1e-2), compile="yes"),
        FblitzTypeError,
        "compile",
        "'yes'",
    )


def test_refuses_params_none_in_a_train_step():
    step = make_train_step(MODEL, likelihoods.gaussian(), optim.adam(1e-2))
    refuses(lambda: step(None, None, 0, X, Y), FblitzTypeError, "params", "None")


def test_correct_batch_larger_than_the_data_is_one_batch():
    big, exact = _fit(batch_size=10_000, epochs=2), _fit(batch_size=8, epochs=2)
    assert_trees_equal(big.params, exact.params)
    assert big.history["loss"] == exact.history["loss"]


def test_correct_no_epochs_left_returns_the_params_untouched():
    params = MODEL.init(3)
    result = _fit(params=params, epochs=2, start_epoch=2)
    assert_trees_equal(result.params, params)
    assert result.history["loss"] == []


def test_correct_an_estimator_some_layers_use_trains_and_says_which():
    model = layers.serial(layers.lstm(3, 4, batch_first=True), lambda out: out[0][:, -1], layers.linear(4, 1))
    result = _fit(model, x=randn(3, 8, 5, 3), y=Y, estimator="local_reparameterization")
    expected = {"0": "reparameterization", "2": "local_reparameterization"}
    assert result.history["estimators"] == expected == estimator_usage(model, model.init(0), "local_reparameterization")
    assert all(torch.isfinite(torch.tensor(result.history["loss"])))


def test_correct_the_estimator_line_is_printed_with_progress(capsys):
    model = layers.serial(layers.lstm(3, 4, batch_first=True), lambda out: out[0][:, -1], layers.linear(4, 1))
    _fit(model, x=randn(3, 8, 5, 3), y=Y, estimator="flipout", progress=True)
    err = capsys.readouterr().err
    assert "estimators by layer: 0 flipout, 2 flipout" in err.splitlines()[0]


def test_correct_shuffle_true_and_false_do_what_they_say():
    # one batch of all rows: the order cannot matter (mean over rows, one weight draw per step)
    for a, b in zip(
        _fit(shuffle=True, batch_size=8).params["0"].values(), _fit(shuffle=False, batch_size=8).params["0"].values()
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # two batches: shuffling changes which rows share a step
    assert _fit(shuffle=True, epochs=2).history["loss"] != _fit(shuffle=False, epochs=2).history["loss"]

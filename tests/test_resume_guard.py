"""Deterministic resume from checkpoints, and the non-finite step guard of ``fit``."""

import pytest
import torch

from fblitz import likelihoods, optim
from fblitz.checkpoint import load_checkpoint
from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteError, NonFiniteStepError
from fblitz.layers import Bayes
from fblitz.training import Checkpointing, Resume, fit, make_train_step
from tests.helpers import assert_trees_equal, mlp, randn

X = randn(0, 64, 2)
Y = X @ torch.tensor([[1.5], [-2.0]]) + 0.1 * randn(1, 64, 1)
MODEL = mlp(2, 8, 1, bayes=Bayes(rho_init=-4.0))


def train(likelihood=None, **kwargs):
    settings = dict(
        likelihood=likelihood or likelihoods.gaussian(0.2),
        optimizer=optim.adam(0.01),
        key=7,
        epochs=5,
        batch_size=16,
        n_samples=2,
        kl="blundell",
        progress=False,
    )
    settings.update(kwargs)
    return fit(MODEL, settings.pop("params", MODEL.init(0)), X, Y, **settings)


def test_resume_from_a_checkpoint_is_bit_identical(tmp_path):
    path = tmp_path / "run.ckpt"
    straight = train(epochs=5)
    first = train(epochs=2, checkpoint=str(path))
    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 2 and ckpt.config["batch_size"] == 16
    resumed = train(params=ckpt.params, epochs=5, **ckpt.resume())
    assert_trees_equal(resumed.params, straight.params)
    assert_trees_equal(resumed.opt_state, straight.opt_state)
    assert first.history["loss"] + resumed.history["loss"] == straight.history["loss"]


def test_checkpoint_every_saves_on_schedule_and_at_the_end(tmp_path):
    path = tmp_path / "run.ckpt"
    seen = []

    def record(info):
        if path.exists():
            seen.append(load_checkpoint(path).epoch)

    result = train(epochs=5, checkpoint=Checkpointing(path, every=2), callback=record)
    assert seen == [2, 2, 4]  # the callback of an epoch runs before its checkpoint is written
    final = load_checkpoint(path)
    assert final.epoch == 5
    assert_trees_equal(final.params, result.params)


def poisoned(at_call: int, *, gradient_only: bool = False):
    """A Gaussian likelihood whose ``at_call``-th evaluation (one per step) is non-finite."""
    base, calls = likelihoods.gaussian(0.2), [0]

    def nll(out, y):
        calls[0] += 1
        value = base(out, y)
        if calls[0] != at_call:
            return value
        if gradient_only:  # value unchanged, gradient NaN: d sqrt(u)/du is inf at u = 0
            return value + torch.sqrt(out - out.detach()).sum()
        return value * float("nan")

    return nll


@pytest.mark.parametrize("gradient_only", [False, True], ids=["nan-loss", "nan-gradient"])
def test_nonfinite_step_raises_with_the_untouched_state_before_it(gradient_only):
    clean = train(epochs=1)  # 4 steps per epoch: call 5 is epoch 1, step 0
    with pytest.raises(NonFiniteStepError, match="epoch 1, step 0") as info:
        train(likelihood=poisoned(5, gradient_only=gradient_only))
    error = info.value
    assert isinstance(error, NonFiniteError) and (error.epoch, error.step) == (1, 0)
    assert_trees_equal(error.params, clean.params)
    assert_trees_equal(error.opt_state, clean.opt_state)


def test_skip_leaves_the_step_out_and_counts_it():
    result = train(likelihood=poisoned(6), on_nonfinite="skip", epochs=3)
    assert result.history["skipped"] == [0, 1, 0]
    assert int(result.opt_state.count) == 11
    assert all(torch.isfinite(t).all() for t in torch.utils._pytree.tree_leaves(result.params))


def test_the_step_reports_finiteness():
    opt = optim.sgd(0.1, momentum=0.9)
    step = make_train_step(MODEL, poisoned(1), opt)
    params = MODEL.init(0)
    out = step(params, opt.init(params), 0, X, Y)
    assert not bool(out.finite)
    good = make_train_step(MODEL, likelihoods.gaussian(0.2), opt)(params, opt.init(params), 0, X, Y)
    assert bool(good.finite)


def test_an_epoch_of_only_skipped_steps_raises():
    with pytest.raises(NonFiniteError, match="every one of the 4 steps of epoch 0"):
        train(likelihood=lambda out, y: (out - y).mean() * float("inf"), on_nonfinite="skip")


def test_bad_guard_and_resume_arguments():
    with pytest.raises(FblitzValueError, match="on_nonfinite must be one of"):
        train(on_nonfinite="ignore")
    with pytest.raises(FblitzValueError, match="epochs must be >= 3"):
        train(resume=Resume(epoch=3), epochs=2)
    with pytest.raises(FblitzValueError, match="Checkpointing.every must be >= 1"):
        train(checkpoint=Checkpointing("run.ckpt", every=0))
    with pytest.raises(FblitzTypeError, match="inputs must have the params' dtype torch.float64"):
        fit(
            MODEL,
            MODEL.init(0, dtype=torch.float64),
            X,
            Y,
            likelihood=likelihoods.gaussian(),
            optimizer=optim.sgd(0.1),
            key=0,
            epochs=1,
            batch_size=8,
        )

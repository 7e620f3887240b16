"""Hostile files and crashes for checkpoints: clear errors on load, a clean disk after a SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from fblitz import _atomic, optim
from fblitz.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, save_checkpoint
from fblitz.errors import CheckpointError, FblitzTypeError
from tests.helpers import mlp
from tests.hostile._expect import refuses

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _payload(**changes):
    params = {"w": {"mu": torch.zeros(2), "rho": torch.full((2,), -5.0)}}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": params,
        "opt_state": None,
        "state": None,
        "key": 3,
        "epoch": 1,
        "step": None,
        "config": json.dumps({"lr": 0.01}),
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not _DROP}


_DROP = object()

CRAFTED = {
    "missing-config": ({"config": _DROP}, ("'config'", "save_checkpoint")),
    "missing-params": ({"params": _DROP}, ("'params'",)),
    "missing-several": ({"key": _DROP, "epoch": _DROP}, ("'key'", "'epoch'")),
    "params-none": ({"params": None}, ("'params'", "NoneType")),
    "params-not-tensors": ({"params": {"w": 1.5}}, ("'params'", "tree")),
    "state-string": ({"state": "running"}, ("'state'",)),
    "epoch-negative": ({"epoch": -1}, ("'epoch'", "int >= 0")),
    "epoch-string": ({"epoch": "3"}, ("'epoch'", "str")),
    "key-float": ({"key": 1.5}, ("'key'", "float")),
    "config-not-json": ({"config": "{lr: 0.01"}, ("'config'", "JSON")),
    "config-json-list": ({"config": "[1, 2]"}, ("'config'", "dict")),
    "config-dict-not-text": ({"config": {"lr": 0.01}}, ("'config'",)),
    "opt-state-fields-missing": ({"opt_state": {"__fblitz_namedtuple__": "AdamState"}}, ("'opt_state'", "damaged")),
    "opt-state-wrong-arity": (
        {"opt_state": {"__fblitz_namedtuple__": "SgdState", "fields": [torch.zeros(())]}},
        ("'opt_state'", "damaged"),
    ),
}


@pytest.mark.parametrize("case", CRAFTED.values(), ids=CRAFTED.keys())
def test_refuses_a_crafted_file_naming_the_field(tmp_path, case):
    changes, names = case
    path = tmp_path / "crafted.ckpt"
    torch.save(_payload(**changes), path)
    refuses(lambda: load_checkpoint(path), CheckpointError, str(path), *names)


def test_correct_the_untouched_payload_loads():
    # the crafted files above differ from this one in one field each
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "ok.ckpt")
        torch.save(_payload(), path)
        ckpt = load_checkpoint(path)
        assert ckpt.epoch == 1 and ckpt.key.seed == 3 and ckpt.config == {"lr": 0.01}


@pytest.mark.parametrize(
    "params", [None, torch.ones(2), "weights"], ids=["none", "tensor", "string"]
)  # fmt: skip
def test_refuses_saving_params_that_are_not_a_tree(tmp_path, params):
    refuses(lambda: save_checkpoint(tmp_path / "c.ckpt", params=params), FblitzTypeError, "params", "tree")
    assert os.listdir(tmp_path) == []


_WRITER = textwrap.dedent(
    """
    import os, sys, time, torch
    import fblitz.checkpoint as checkpoint

    def slow(payload, file):  # write part of the file, say so, then hang until killed
        file.write(b"x" * 1_000_000)
        file.flush()
        print("writing", flush=True)
        time.sleep(600)

    checkpoint._serialize = slow
    checkpoint.save_checkpoint(sys.argv[1], params={"w": torch.zeros(3)})
    """
)


def _killed_mid_write(path) -> None:
    """Start a process saving ``path``, SIGKILL it while its temporary file is half written."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    command = [sys.executable, "-c", _WRITER, str(path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True) as writer:
        try:
            assert writer.stdout.readline().strip() == "writing"
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=60)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process probing are POSIX")
def test_correct_a_save_after_sigkills_removes_only_its_own_stale_temp_files(tmp_path):
    path, other = tmp_path / "run.ckpt", tmp_path / "other.ckpt"
    _killed_mid_write(path)
    first = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    _killed_mid_write(path)  # the second writer removed the first one's leftover before it was killed too
    _killed_mid_write(other)
    stale = sorted(name for name in os.listdir(tmp_path) if name.endswith(".tmp"))
    assert len(first) == 1 and first[0] not in stale and len(stale) == 2
    assert all(".fblitz-" in name for name in stale)
    (tmp_path / ".run.ckpt.notes.tmp").write_text("not ours: another program's file")
    save_checkpoint(path, params={"w": torch.ones(3)}, epoch=2)
    left = sorted(os.listdir(tmp_path))
    assert "run.ckpt" in left and ".run.ckpt.notes.tmp" in left
    assert [name for name in left if name.startswith(".other.ckpt.")] != []  # another checkpoint's: untouched
    assert not [name for name in left if name.startswith(".run.ckpt.fblitz-")]
    assert load_checkpoint(path).epoch == 2


@pytest.mark.skipif(os.name != "posix", reason="process probing is POSIX")
def test_correct_a_live_writers_temp_file_is_left_alone(tmp_path):
    path = tmp_path / "run.ckpt"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        live = tmp_path / f".run.ckpt.fblitz-{_atomic._host_tag()}-{sleeper.pid}-00ff00ff.tmp"
        other_host = tmp_path / f".run.ckpt.fblitz-00000000-{sleeper.pid + 1_000_000}-00ff00ff.tmp"
        live.write_bytes(b"in progress")
        other_host.write_bytes(b"another machine's write on a shared disk")
        save_checkpoint(path, params={"w": torch.ones(1)})
        assert live.exists() and other_host.exists()
    finally:
        sleeper.kill()
        sleeper.wait(timeout=60)
    for _ in range(50):  # the killed writer is now gone: its temp file is stale
        if not _atomic._process_exists(sleeper.pid):
            break
        time.sleep(0.1)
    save_checkpoint(path, params={"w": torch.ones(1)})
    assert not live.exists() and other_host.exists()


def test_correct_fit_checkpoints_still_round_trip(tmp_path):
    model = mlp(3, 4, 1)
    params = model.init(0)
    opt = optim.adam(1e-2)
    save_checkpoint(tmp_path / "c.ckpt", params=params, opt_state=opt.init(params), key=5, epoch=0)
    restored = load_checkpoint(tmp_path / "c.ckpt")
    assert restored.resume()["start_epoch"] == 0 and os.listdir(tmp_path) == ["c.ckpt"]

"""Safe, atomic training checkpoints.

A checkpoint holds the params, the optimizer state, the running statistics
(batch norm), the random key, the epoch/step counters and a JSON config.

* **Loading never runs code from the file.** It uses
  ``torch.load(weights_only=True)``, whose unpickler accepts only tensors and
  plain containers; a file that asks for anything else is refused with a
  :class:`~fblitz.errors.CheckpointError`. Optimizer states (NamedTuples such
  as :class:`~fblitz.optim.AdamState`) are stored as tagged plain containers
  and rebuilt from an allowlist of classes, never imported by name.
* **Writes are atomic**: the file is written to a temporary file in the same
  directory, flushed and fsynced, then renamed over the target with
  ``os.replace``. A failure mid-write leaves the previous checkpoint intact
  and removes the temporary file; the temporary file of a process killed
  mid-write (SIGKILL) is removed by the next save of the same checkpoint
  (only that checkpoint's, only when its writer no longer runs; see
  :mod:`fblitz._atomic`).
* **Loading checks every field**, so a damaged or hand-made file is a
  :class:`~fblitz.errors.CheckpointError` naming the field, never a
  ``KeyError`` or a wrong value downstream.
* Tensors round-trip bit for bit with their dtypes (float64, int64 counts, ...).

Example:
    >>> import tempfile, os, torch
    >>> from fblitz import optim
    >>> params = {"w": {"mu": torch.zeros(2), "rho": torch.full((2,), -5.0)}}
    >>> opt = optim.adam(1e-2)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.ckpt")
    >>> save_checkpoint(path, params=params, opt_state=opt.init(params), epoch=3, config={"lr": 1e-2})
    >>> ckpt = load_checkpoint(path)
    >>> ckpt.epoch, type(ckpt.opt_state).__name__, ckpt.config
    (3, 'AdamState', {'lr': 0.01})
"""

from __future__ import annotations

import json
import numbers
import os
import pickle
import warnings
from typing import Any, NamedTuple

import torch

from fblitz import _checks
from fblitz._atomic import write_atomically
from fblitz.errors import CheckpointError, FblitzError, FblitzTypeError, FblitzValueError
from fblitz.layers.params_check import check_params
from fblitz.optim import AdamState, SgdState
from fblitz.random import Key
from fblitz.tree import PyTree, check_tensor_leaves

FORMAT = "fblitz.checkpoint"
FORMAT_VERSION = 1
_TAG = "__fblitz_namedtuple__"
STATE_TYPES = (SgdState, AdamState)


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns; absent entries are None."""

    params: PyTree
    opt_state: Any = None
    state: PyTree | None = None
    key: Key | None = None
    epoch: int | None = None
    step: int | None = None
    config: dict | None = None
    format_version: int = FORMAT_VERSION

    def resume(self) -> dict:
        """Keyword arguments that make :func:`fblitz.train.fit` continue this run.

        ``fit(model, ckpt.params, x, y, ..., epochs=total, **ckpt.resume())``
        passes ``key``, ``opt_state``, ``state`` and ``start_epoch``.
        """
        if self.key is None or self.epoch is None:
            raise CheckpointError("resuming needs a checkpoint saved with key= and epoch=")
        return {"key": self.key, "opt_state": self.opt_state, "state": self.state, "start_epoch": self.epoch}


def _encode(value: object) -> object:
    """Turn NamedTuples into tagged plain containers that ``weights_only`` accepts."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return {_TAG: type(value).__name__, "fields": [_encode(v) for v in value]}
    if isinstance(value, (tuple, list)):
        return type(value)(_encode(v) for v in value)
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (torch.Tensor, bool, int, float, str)):
        return value
    raise FblitzTypeError(f"opt_state must hold tensors, numbers, containers and NamedTuples, got {value!r}")


def _decode(value: object, types: dict) -> object:
    if isinstance(value, dict) and _TAG in value:
        cls = types.get(value[_TAG])
        if cls is None:
            raise CheckpointError(
                f"the checkpoint's optimizer state uses {value[_TAG]!r}, which is not an allowed state type "
                f"({sorted(types)}); pass it in state_types=..."
            )
        return cls(*(_decode(v, types) for v in value["fields"]))
    if isinstance(value, (tuple, list)):
        return type(value)(_decode(v, types) for v in value)
    if isinstance(value, dict):
        return {k: _decode(v, types) for k, v in value.items()}
    return value


def _serialize(payload: dict, file) -> None:
    """Write ``payload`` to an open binary file (a seam for fault-injection tests)."""
    torch.save(payload, file)


def check_checkpoint_path(name: str, path: object) -> str:
    """``path`` as a string if a checkpoint can be written there: a file path in an existing directory.

    Checked before training starts, so a typo does not end a long run at its first save.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise FblitzTypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not path or os.path.isdir(path):
        raise FblitzValueError(f"{name} must be a file path, got the directory {path!r}")
    if not os.path.isdir(directory):
        raise FblitzValueError(f"{name} must be a file in an existing directory, but {directory!r} does not exist")
    return path


def _check_tree(name: str, tree: object) -> None:
    if not isinstance(tree, (dict, list, tuple)):
        raise FblitzTypeError(f"{name} must be a tree (dict, list or tuple) of tensors, got {type(tree).__name__}")
    check_tensor_leaves(name, tree)


def _optional_int(name: str, value: object) -> int | None:
    return None if value is None else _checks.integer(name, value, minimum=0)


def save_checkpoint(
    path: str | os.PathLike,
    *,
    params: PyTree,
    opt_state: Any = None,
    state: PyTree | None = None,
    key: Key | int | None = None,
    epoch: int | None = None,
    step: int | None = None,
    config: dict | None = None,
) -> None:
    """Write a checkpoint atomically to ``path`` (replacing any file there).

    Args:
        path: the file to write; its directory must exist.
        params: the params tree (tensor leaves).
        opt_state: an optimizer state from :mod:`fblitz.optim` (NamedTuples,
            tuples, tensors).
        state: running statistics (tensor leaves) or None.
        key: the run's random key (or int seed).
        epoch, step: counters, ints >= 0 (e.g. the number of epochs done).
        config: a JSON-serialisable dict (hyper-parameters); checked here.

    Raises:
        FblitzTypeError: for non-tensor leaves, a non-JSON config or a bad key.
    """
    _check_tree("params", params)
    if state is not None:
        _check_tree("state", state)
    if config is not None:
        if not isinstance(config, dict):
            raise FblitzTypeError(f"config must be a dict, got {type(config).__name__}")
        try:
            config_text = json.dumps(config, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise FblitzTypeError(f"config must be JSON-serialisable (finite numbers, str keys): {error}") from None
    if key is not None and not isinstance(key, Key):
        key = Key(_checks.integer("key", key))
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": params,
        "opt_state": _encode(opt_state),
        "state": state,
        "key": None if key is None else key.seed,
        "epoch": _optional_int("epoch", epoch),
        "step": _optional_int("step", step),
        "config": None if config is None else config_text,
    }
    write_atomically(os.fspath(path), lambda file: _serialize(payload, file))


def load_checkpoint(path: str | os.PathLike, *, model=None, map_location=None, state_types: tuple = ()) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`, without executing code from it.

    Args:
        path: the checkpoint file.
        model: the :class:`~fblitz.layers.Layer` the params belong to; when
            given, the stored params are checked against it
            (:func:`fblitz.layers.check_params`), so a checkpoint of another
            model is refused here rather than failing (or broadcasting) later.
        map_location: passed to ``torch.load`` (e.g. ``"cpu"``).
        state_types: extra NamedTuple classes allowed in the optimizer state,
            beyond :data:`STATE_TYPES` (for custom transforms).

    Raises:
        CheckpointError: the file is not a fblitz checkpoint, has an unknown
            format version, or asks the unpickler for anything but tensors and
            plain containers (a possibly malicious file); or its params do not
            fit ``model`` (the message names the path in the params tree).
    """
    path = os.fspath(path)
    try:
        with warnings.catch_warnings():  # a foreign pickle protocol is refused below if it matters
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, OSError) as error:
        raise CheckpointError(
            f"refusing to load {path!r}: it is not a fblitz checkpoint, is damaged, or needs code execution "
            f"to unpickle (only tensors and plain containers are allowed): {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is not a fblitz checkpoint (no {FORMAT!r} format marker)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path!r} has checkpoint format_version {version!r}; this fblitz reads version {FORMAT_VERSION}"
        )
    types = {cls.__name__: cls for cls in (*STATE_TYPES, *state_types)}
    checkpoint = _read_fields(path, payload, types, version)
    if model is not None:
        try:
            check_params(model, checkpoint.params, name="the checkpoint's params")
        except FblitzError as error:
            raise CheckpointError(f"{path!r} does not hold params of this model: {error}") from None
    return checkpoint


FIELDS = ("params", "opt_state", "state", "key", "epoch", "step", "config")


def _read_fields(path: str, payload: dict, types: dict, version: int) -> Checkpoint:
    """The :class:`Checkpoint` in ``payload``, each field checked; a bad one is a CheckpointError naming it."""
    missing = [name for name in FIELDS if name not in payload]
    if missing:
        raise CheckpointError(
            f"{path!r} lacks the field(s) {missing} that save_checkpoint always writes (it was made or edited by "
            "other code); save it again with fblitz.checkpoint.save_checkpoint"
        )

    def bad(field: str, expected: str) -> CheckpointError:
        value = payload[field]
        return CheckpointError(f"{path!r} field {field!r} must be {expected}, got {type(value).__name__}")

    params, state = payload["params"], payload["state"]
    for field, value in (("params", params), ("state", state)):
        if value is None and field == "state":
            continue
        try:
            _check_tree(field, value)
        except FblitzError:
            raise bad(field, "a tree (dict, list or tuple) of tensors") from None
    for field in ("key", "epoch", "step"):
        value = payload[field]
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0):
            raise bad(field, "None or an int >= 0")
    config = payload["config"]
    if config is not None:
        try:
            config = json.loads(config) if isinstance(config, str) else None
        except ValueError:
            config = None
        if not isinstance(config, dict):
            raise bad("config", "None or the JSON text of a dict")
    try:
        opt_state = _decode(payload["opt_state"], types)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path!r} field 'opt_state' is damaged: {type(error).__name__}: {error}") from None
    return Checkpoint(
        params=params,
        opt_state=opt_state,
        state=state,
        key=None if payload["key"] is None else Key(payload["key"]),
        epoch=payload["epoch"],
        step=payload["step"],
        config=config,
        format_version=version,
    )

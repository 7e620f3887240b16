"""Joining and leaving the ``torch.distributed`` process group, with timeouts.

Launchers such as ``torchrun`` set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init` reads them. Every
collective fblitz issues runs under the group's ``timeout``, so a rank that
dies or stops answering makes the others raise instead of waiting forever
(a crashed peer is usually noticed at once, as a closed connection; a hung
one after ``timeout`` seconds).

Example:
    >>> World(rank=1, world_size=2, local_rank=1, backend="gloo", device=torch.device("cpu")).is_main
    False
"""

from __future__ import annotations

import datetime
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.distributed as dist

from fblitz import _checks
from fblitz.errors import FblitzValueError

BACKENDS = ("gloo", "nccl")
DEFAULT_TIMEOUT = 300.0
_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class World(NamedTuple):
    """Where this process stands in the group.

    Attributes:
        rank, world_size: this process's rank and the number of processes.
        local_rank: its index on this machine (selects the GPU with NCCL).
        backend: ``"gloo"`` or ``"nccl"``.
        device: where this rank's tensors live (``cuda:<local_rank>`` with NCCL, else CPU).
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one rank that prints and writes checkpoints."""
        return self.rank == 0


def default_backend() -> str:
    """``"nccl"`` when CUDA is available, otherwise ``"gloo"``."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def current_world() -> World:
    """The :class:`World` of the initialised default group."""
    if not dist.is_available() or not dist.is_initialized():
        raise FblitzValueError("no torch.distributed process group: call fblitz.distributed.init() first")
    backend = str(dist.get_backend())
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    return World(dist.get_rank(), dist.get_world_size(), local_rank, backend, device)


def init(backend: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> World:
    """Join the default process group from the launcher's environment variables.

    Args:
        backend: ``"gloo"`` (CPU) or ``"nccl"`` (GPU); default :func:`default_backend`.
        timeout: seconds that joining and every later collective may wait for
            the other ranks before raising.

    Returns:
        This process's :class:`World`. Calling it again returns the current world.
    """
    timeout = _checks.positive("timeout", timeout)
    if dist.is_initialized():
        return current_world()
    missing = [name for name in _ENV if name not in os.environ]
    if missing:
        raise FblitzValueError(
            f"environment variables {missing} must be set (torchrun sets them; see the README's distributed section)"
        )
    backend = default_backend() if backend is None else _checks.one_of("backend", backend, BACKENDS)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    return current_world()


def shutdown() -> None:
    """Leave the process group (nothing happens when there is none)."""
    if dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def process_group(backend: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> Iterator[World]:
    """:func:`init` on entry, :func:`shutdown` on exit.

    A group that was already initialised when the block was entered is used
    as it is and left running on exit (its owner shuts it down). An exception
    inside the block is reported on stderr with the rank before it
    propagates, so the launcher's log says which rank failed first.
    """
    owned = not (dist.is_available() and dist.is_initialized())
    world = init(backend, timeout=timeout)
    try:
        yield world
    except BaseException as error:
        print(f"[fblitz rank {world.rank}/{world.world_size}] failed: {error!r}", file=sys.stderr, flush=True)
        raise
    finally:
        if owned:
            shutdown()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (for ``MASTER_PORT`` in local runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]

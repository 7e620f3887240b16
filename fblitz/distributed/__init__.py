"""Training on ``torch.distributed``: data-parallel and sample-parallel.

Launch one process per device with ``torchrun`` (gloo on CPU, NCCL on GPU),
join the group with :func:`init` (or :func:`process_group`), then call
:func:`fit_distributed` on every rank, or build a step with
:func:`make_distributed_step`. See the README's "Distributed training"
section and ``python -m fblitz.examples.boston_ddp``.
"""

from fblitz.distributed.collectives import all_reduce_tree, broadcast_tree
from fblitz.distributed.fit import fit_distributed
from fblitz.distributed.group import World, current_world, default_backend, free_port, init, process_group, shutdown
from fblitz.distributed.sharding import rank_key, shard
from fblitz.distributed.step import DistributedStep, make_distributed_step

__all__ = [
    "DistributedStep",
    "World",
    "all_reduce_tree",
    "broadcast_tree",
    "current_world",
    "default_backend",
    "fit_distributed",
    "free_port",
    "init",
    "make_distributed_step",
    "process_group",
    "rank_key",
    "shard",
    "shutdown",
]

"""The Boston-housing example trained on several processes with ``torch.distributed``.

Same data, model and settings as :mod:`fblitz.examples.boston`; training runs
on every rank of a process group with :func:`fblitz.distributed.fit_distributed`,
data-parallel (each 16-row minibatch split over the ranks) or sample-parallel
(its 3 weight samples split over the ranks). Rank 0 alone prints and writes
the checkpoint. Launch it with torchrun::

    torchrun --nproc-per-node 2 -m fblitz.examples.boston_ddp
    torchrun --nproc-per-node 2 -m fblitz.examples.boston_ddp --mode sample --samples 4

Started without a launcher (no ``RANK`` in the environment) it runs as a
one-process group. ``--help`` lists the options.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import torch

from fblitz import distributed
from fblitz._argtypes import integer, output_file, real
from fblitz.examples import boston
from fblitz.random import Key
from fblitz.tree import tree_map


def parse_args(argv=None) -> argparse.Namespace:
    parser = boston.build_parser(__doc__)
    parser.add_argument("--mode", choices=("data", "sample"), default="data", help="what the ranks split")
    parser.add_argument(
        "--noise", choices=("per_rank", "shared"), default="per_rank", help="data mode: noise drawn per rank or shared"
    )
    parser.add_argument("--backend", choices=distributed.group.BACKENDS, default=None, help="default: nccl on GPU")
    parser.add_argument(
        "--timeout", type=real(0.0, open_minimum=True), default=300.0, help="seconds a rank waits for the others"
    )
    parser.add_argument(
        "--checkpoint", type=output_file, default=None, help="checkpoint file written by rank 0 (default: none)"
    )
    parser.add_argument("--checkpoint-every", type=integer(1), default=100, help="epochs between checkpoints")
    parser.set_defaults(compile=False)
    return parser.parse_args(argv)


@contextlib.contextmanager
def _single_process_defaults():
    """Without a launcher, a one-rank group's variables for the block; the environment is restored after."""
    if "RANK" in os.environ:
        yield
        return
    added = dict(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(distributed.free_port()))
    saved = {name: os.environ.get(name) for name in added}
    os.environ.update(added)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main(argv=None) -> dict | None:
    """Train on this rank; rank 0 returns the final metrics, the other ranks None."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with _single_process_defaults(), distributed.process_group(args.backend, timeout=args.timeout) as world:
        x_train, y_train, x_test, y_test, target_std = (
            t.to(world.device) if isinstance(t, torch.Tensor) else t for t in boston.load_data()
        )
        model = boston.build_model(args.activation, args.likelihood)
        k_init, k_fit, k_eval = Key(args.seed).split(3)
        params = tree_map(lambda t: t.to(world.device), model.init(k_init))
        report = boston.make_reporter(args, model, x_test, y_test, key=k_eval, target_std=target_std)
        if world.is_main and not args.json:
            print(f"{world.world_size} ranks ({world.backend}), {args.mode}-parallel", flush=True)
        start = time.perf_counter()
        result = distributed.fit_distributed(
            model, params, x_train, y_train, key=k_fit, callback=report if args.report_every else None,
            mode=args.mode, noise=args.noise, checkpoint_path=args.checkpoint, checkpoint_every=args.checkpoint_every,
            **boston.fit_settings(args, len(x_train)),
        )  # fmt: skip
        seconds = time.perf_counter() - start
        if not world.is_main:
            return None
        return boston.summarize(
            args, model, result, x_test, y_test, key=k_eval, target_std=target_std, seconds=seconds,
            train_rows=len(x_train),
        )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])

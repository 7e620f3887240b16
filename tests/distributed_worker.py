"""Worker processes for tests/test_distributed*.py: ``python -m tests.distributed_worker``.

:class:`Launch` starts one process per rank (gloo over loopback, a free port)
and waits for them; each runs a scenario from :data:`SCENARIOS` inside
:func:`fblitz.distributed.process_group` and saves its result to
``<out_dir>/rank<r>.pt``. :func:`problem` is the small float64 regression that
both the workers and the single-process references in the tests train on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

import torch

from fblitz import distributed, layers, likelihoods, optim
from tests.helpers import mlp, randn, to_double

ROOT = Path(__file__).resolve().parent.parent
ROWS, BATCH, KL_WEIGHT = 31, 8, 0.3  # batches 8, 8, 8, 7: the last one splits unevenly over 2 ranks


def _last_step(out):
    return out[0][:, -1]


# models with per-example noise, trained with noise="shared" (name -> (model, estimator passed to fit))
PER_EXAMPLE = {
    "local_reparameterization": (lambda: mlp(3, 8, 1), "local_reparameterization"),
    "flipout": (lambda: mlp(3, 8, 1), "flipout"),
    "dropout": (
        lambda: layers.serial(layers.linear(3, 8), layers.relu, layers.dropout(0.3), layers.linear(8, 1)),
        None,
    ),
    "gru_flipout": (  # each row's 3 features as a sequence of 3 steps
        lambda: layers.serial(
            layers.stateless(lambda x: x.unsqueeze(-1), "as_sequence"),
            layers.gru(1, 4, batch_first=True, estimator="flipout"),
            layers.stateless(_last_step, "last_step"),
            layers.linear(4, 1),
        ),
        None,
    ),
}


def problem(name: str | None = None):
    """``(model, params, x, y, settings)``: a 3-8-1 float64 regression, 31 rows (or a model of :data:`PER_EXAMPLE`)."""
    model = mlp(3, 8, 1) if name is None else PER_EXAMPLE[name][0]()
    x = randn(11, ROWS, 3, dtype=torch.float64)
    y = x.sum(dim=1, keepdim=True).sin() + 0.1 * randn(12, ROWS, 1, dtype=torch.float64)
    settings = dict(
        likelihood=likelihoods.gaussian(0.5), optimizer=optim.adam(0.02), key=5, epochs=3, batch_size=BATCH,
        complexity_cost_weight=KL_WEIGHT, kl_mode="closed_form",
    )  # fmt: skip
    if name is not None:
        settings["estimator"] = PER_EXAMPLE[name][1]
    return model, to_double(model.init(0)), x, y, settings


def train(rank: int, out_dir: Path) -> dict:
    model, params, x, y, settings = problem()
    # rank 1 starts from other params: fit_distributed must broadcast rank 0's
    shared = distributed.fit_distributed(
        model, params if rank == 0 else to_double(model.init(99)), x, y, **settings, n_samples=2, noise="shared",
        progress=True, checkpoint_path=str(out_dir / f"checkpoint-rank{rank}.pt"),
    )  # fmt: skip
    per_rank = distributed.fit_distributed(model, params, x, y, **settings, n_samples=2)
    samples = {
        s: distributed.fit_distributed(model, params, x, y, **settings, mode="sample", n_samples=s) for s in (4, 3)
    }
    step = distributed.make_distributed_step(
        model, settings["likelihood"], settings["optimizer"], n_samples=2, kl_mode="closed_form"
    )
    mine = distributed.shard(BATCH, rank, 2)
    _, _, terms = step(params, settings["optimizer"].init(params), 9, x[mine], y[mine], KL_WEIGHT)
    per_example = {}
    for name in PER_EXAMPLE:
        model, params, x, y, settings = problem(name)
        per_example[name] = distributed.fit_distributed(model, params, x, y, **settings, n_samples=2, noise="shared")
    # a step of its own, without row_offset: it finds its first row with an all_gather
    model, params, x, y, settings = problem("flipout")
    step = distributed.make_distributed_step(
        model, settings["likelihood"], settings["optimizer"], n_samples=2, noise="shared", kl_mode="closed_form",
        estimator="flipout",
    )  # fmt: skip
    uneven = distributed.shard(7, rank, 2)  # rows 0-3 and 4-6
    one_step = step(params, settings["optimizer"].init(params), 9, x[uneven], y[uneven], KL_WEIGHT)
    return {
        "shared": shared,
        "per_rank": per_rank,
        "samples": samples,
        "one_step_terms": tuple(terms),
        "per_example": per_example,
        "flipout_step": one_step,
    }


def _fail_at_step_2(rank: int, out_dir: Path, how: str) -> None:
    model, params, x, y, settings = problem()
    step = distributed.make_distributed_step(model, settings["likelihood"], settings["optimizer"])
    opt_state = settings["optimizer"].init(params)
    for index in range(20):
        if rank == 1 and index == 2:
            if how == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            if how == "exit":
                os._exit(3)
            time.sleep(120)  # "hang": stop answering; the test kills this process
        params, opt_state, _ = step(params, opt_state, index, x, y, KL_WEIGHT)


SCENARIOS = {
    "train": train,
    "raise": lambda rank, out: _fail_at_step_2(rank, out, "raise"),
    "exit": lambda rank, out: _fail_at_step_2(rank, out, "exit"),
    "hang": lambda rank, out: _fail_at_step_2(rank, out, "hang"),
}


class RankRun(NamedTuple):
    returncode: int | None  # None: still running when the launcher stopped waiting (then killed)
    seconds: float  # from launch until this process ended
    stdout: str
    stderr: str


def environment() -> dict:
    """The workers' environment: this checkout importable, one thread, gloo on loopback."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    if Path("/sys/class/net/lo").exists():
        env["GLOO_SOCKET_IFNAME"] = "lo"
    return env


class Launch:
    """Processes started at once (one per command); see :meth:`wait`.

    Several launches can run side by side; a thread per process records when
    it ends and drains its output.
    """

    def __init__(self, commands: list[list[str]]):
        self.start = time.perf_counter()
        self.procs = [
            subprocess.Popen(
                command, cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for command in commands
        ]
        self.ended: list[float | None] = [None] * len(commands)
        self.output = [("", "")] * len(commands)
        self.threads = [threading.Thread(target=self._watch, args=(i,), daemon=True) for i in range(len(commands))]
        for thread in self.threads:
            thread.start()

    @classmethod
    def scenario(cls, scenario: str, out_dir: Path, *, world_size: int = 2, timeout: float = 20.0) -> Launch:
        """One worker process per rank running ``scenario``; ``timeout``: the group's, in seconds."""
        port = str(distributed.free_port())
        return cls([
            [sys.executable, "-m", "tests.distributed_worker", scenario, str(rank), str(world_size), port, str(out_dir),
             str(timeout)]
            for rank in range(world_size)
        ])  # fmt: skip

    def _watch(self, index: int) -> None:
        self.output[index] = self.procs[index].communicate()
        self.ended[index] = time.perf_counter() - self.start

    def wait(self, *, wait: float = 180.0, wait_for=None) -> list[RankRun]:
        """Wait (at most ``wait`` s from the start) for the processes in ``wait_for`` (default: all); kill the rest."""
        for index in range(len(self.procs)) if wait_for is None else wait_for:
            self.threads[index].join(max(0.0, wait - (time.perf_counter() - self.start)))
        codes = [proc.poll() for proc in self.procs]
        for proc, code in zip(self.procs, codes):
            if code is None:
                proc.kill()
        for thread in self.threads:
            thread.join()
        return [
            RankRun(code, self.ended[index] if code is not None else wait, *self.output[index])
            for index, code in enumerate(codes)
        ]


def main(argv: list[str]) -> None:
    scenario, rank, world_size, port, out_dir, timeout = argv
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=rank, WORLD_SIZE=world_size, LOCAL_RANK=rank)
    with distributed.process_group("gloo", timeout=float(timeout)):
        result = SCENARIOS[scenario](int(rank), Path(out_dir))
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1:])

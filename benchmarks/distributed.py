"""Two processes against one: the speed of fblitz.distributed on a shared 2-core machine.

``python -m benchmarks.distributed`` starts two gloo ranks on this machine (one
torch thread each) and, for each case, times in the *same* processes and
interleaved round by round (so the load of a shared machine falls on all of
them alike):

* ``single-1t``: rank 0 alone runs ``make_train_step`` with 1 thread (rank 1 waits);
* ``single-2t``: the same with 2 threads (one process using both cores);
* ``data-parallel``: both ranks, each on half of the batch with S samples;
* ``sample-parallel``: both ranks, the whole batch, S/2 samples each;
* ``all_reduce only``: the communication alone, one bucketed ``all_reduce`` of a
  params-sized tree (what each parallel step adds to its share of the compute).

Each timing is ``steps`` consecutive steps (one Adam update each, the
all_reduce included); we report per-step medians and minima over the rounds
and the speed-up = median(single-1t) / median(impl) (> 1 is faster).

Usage::

    python -m benchmarks.distributed                      # both cases, 7 rounds of 20 steps
    python -m benchmarks.distributed --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from benchmarks.cases import NETS, data
from fblitz import distributed, optim
from fblitz.random import Key
from fblitz.train import make_train_step

CASES = (("13-512-1", 16, 3), ("784-400-400-10", 128, 8))  # (net, batch, S): the Boston net and settings; an MNIST MLP
ROOT = Path(__file__).resolve().parent.parent


def _runners(net, batch: int, samples: int, rank: int, world_size: int) -> dict:
    model, likelihood, optimizer = net.build(), net.likelihood, optim.adam(1e-3)
    x, y = data(net, batch)
    mine = distributed.shard(batch, rank, world_size)
    single = make_train_step(model, likelihood, optimizer, n_samples=samples)
    by_rows = distributed.make_distributed_step(model, likelihood, optimizer, mode="data", n_samples=samples)
    by_samples = distributed.make_distributed_step(model, likelihood, optimizer, mode="sample", n_samples=samples)
    return (
        {
            "single-1t": (1, lambda p, s, k: single(p, s, k, x, y, 1e-3)),
            "single-2t": (2, lambda p, s, k: single(p, s, k, x, y, 1e-3)),
            "data-parallel": (1, lambda p, s, k: by_rows(p, s, k, x[mine], y[mine], 1e-3)),
            "sample-parallel": (1, lambda p, s, k: by_samples(p, s, k, x, y, 1e-3)),
            "all_reduce only": (1, lambda p, s, k: (distributed.all_reduce_tree(p), s, None)),
        },
        model.init(Key(0)),
        optimizer,
    )


def worker(rank: int, world_size: int, port: int, steps: int, rounds: int, warmup: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    records = []
    with distributed.process_group("gloo", timeout=600):
        for number, (name, batch, samples) in enumerate(CASES, start=1):
            if rank == 0:  # progress on stderr: the results table comes at the end
                print(f"[{number}/{len(CASES)}] {name} b{batch} S{samples}", file=sys.stderr, flush=True)
            runners, params, optimizer = _runners(NETS[name], batch, samples, rank, world_size)
            times: dict[str, list[float]] = {impl: [] for impl in runners}
            for round_index in range(rounds + 1):  # round 0 is the warm-up
                for impl, (threads, run) in runners.items():
                    dist.barrier()
                    if impl.startswith("single") and rank != 0:
                        dist.barrier()  # rank 1 idles while rank 0 runs alone
                        continue
                    torch.set_num_threads(threads)
                    p, s = params, optimizer.init(params)
                    count = warmup if round_index == 0 else steps
                    start = time.perf_counter()
                    for step in range(count):
                        p, s, _ = run(p, s, step)
                    elapsed = (time.perf_counter() - start) / count
                    if round_index:
                        times[impl].append(elapsed * 1e3)
                    torch.set_num_threads(1)
                    if impl.startswith("single"):
                        dist.barrier()
            if rank:
                continue
            base = statistics.median(times["single-1t"])
            for impl, values in times.items():
                median = statistics.median(values)
                records.append(
                    dict(case=f"{name} b{batch} S{samples}", impl=impl, ms_median=median, ms_min=min(values),
                         speedup=base / median, rounds=rounds, steps=steps)
                )  # fmt: skip
        if rank == 0:
            Path(out).write_text(json.dumps(records))


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (plus one warm-up round)")
    parser.add_argument("--warmup", type=int, default=5, help="steps of the warm-up round")
    parser.add_argument("--json", default=None, help="also write the records to this file")
    parser.add_argument("--worker", nargs=3, type=str, help=argparse.SUPPRESS)  # rank port out
    args = parser.parse_args(argv)
    if args.worker:
        rank, port, out = args.worker
        torch.set_num_threads(1)
        worker(int(rank), 2, int(port), args.steps, args.rounds, args.warmup, out)
        return []
    out = Path(args.json or "/tmp/fblitz-distributed-bench.json").resolve()
    port, load_before = distributed.free_port(), os.getloadavg()[0]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    common = ["--steps", str(args.steps), "--rounds", str(args.rounds), "--warmup", str(args.warmup)]
    command = [sys.executable, "-m", "benchmarks.distributed", *common, "--worker"]
    procs = [subprocess.Popen([*command, str(r), str(port), str(out)], cwd=ROOT, env=env) for r in range(2)]
    if any(proc.wait() != 0 for proc in procs):
        raise SystemExit("a benchmark rank failed")
    records = json.loads(out.read_text())
    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores, 1-min load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after (shared machine); {args.rounds} rounds of {args.steps} steps\n"
    )
    print("| case | impl | ms/step median | ms/step min | speed-up vs single-1t |\n|---|---|---|---|---|")
    for r in records:
        print(f"| {r['case']} | {r['impl']} | {r['ms_median']:.2f} | {r['ms_min']:.2f} | {r['speedup']:.2f} |")
    return records


if __name__ == "__main__":
    main(sys.argv[1:])

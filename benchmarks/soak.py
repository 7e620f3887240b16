"""Soak test: many small training steps, RSS sampled at intervals; fails on growth.

    OMP_NUM_THREADS=1 python -m benchmarks.soak --steps 20000 --bound-mb 64

Runs ``fit`` on a small regression problem (one step per minibatch) and
reports the resident set size (Linux ``/proc/self/statm``) every ``--every``
steps. Growth after the warm-up beyond ``--bound-mb`` exits with status 1.
"""

from __future__ import annotations

import argparse
import os

import torch

from fblitz import layers, likelihoods, optim
from fblitz.random import normal
from fblitz.train import fit


def rss_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def soak(steps: int, every: int = 1000, batch_size: int = 8, report=None) -> list[tuple[int, float]]:
    """Train ``steps`` steps; return ``[(steps_done, rss_mb), ...]`` sampled every ``every`` steps.

    ``report(steps_done, rss_mb)``, if given, is called at each sample (progress as it goes).
    """
    model = layers.serial(layers.linear(4, 16), layers.relu, layers.linear(16, 1))
    x = normal(0, (every * batch_size // 10, 4))
    y = x.sum(dim=1, keepdim=True)
    params, opt = model.init(1), optim.adam(1e-3)
    state, samples, done = None, [], 0
    per_epoch = -(-len(x) // batch_size)
    while done < steps:
        epochs = max(1, every // per_epoch)
        result = fit(
            model,
            params,
            x,
            y,
            likelihood=likelihoods.gaussian(0.5),
            optimizer=opt,
            key=2,
            epochs=done // per_epoch + epochs,
            start_epoch=done // per_epoch,
            batch_size=batch_size,
            opt_state=state,
            n_samples=2,
            progress=False,
        )
        params, state = result.params, result.opt_state
        done += epochs * per_epoch
        samples.append((done, rss_mb()))
        if report is not None:
            report(*samples[-1])
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--bound-mb", type=float, default=64.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    samples = soak(
        args.steps, args.every, report=lambda done, rss: print(f"step {done:6d}  rss {rss:8.1f} MB", flush=True)
    )
    growth = samples[-1][1] - samples[min(1, len(samples) - 1)][1]
    print(f"growth after warm-up: {growth:.1f} MB (bound {args.bound_mb} MB)")
    raise SystemExit(0 if growth <= args.bound_mb else 1)


if __name__ == "__main__":
    main()

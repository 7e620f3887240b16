"""Prototype: how row chunking changes the speed of vmapped prediction (13-512-1, S=100, 10k rows).

``python -m benchmarks.prototypes.predict_chunks``; prints ms per mfvi-style call for each
``batch_size`` of :func:`fblitz.prediction.predict`, next to the Python loop over samples.
"""

import time

import torch

from benchmarks.cases import NETS, data
from fblitz.layers import sample_noise
from fblitz.prediction import predict
from fblitz.random import Key
from fblitz.tree import tree_map


def best_of(fn, n=3):
    """Minimum wall time of ``n`` calls, in ms."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main(rows=10_000, samples=100):
    torch.set_num_threads(2)
    net = NETS["13-512-1"]
    model = net.build()
    params = model.init(Key(0))
    x, _ = data(net, rows, 1)
    eps = sample_noise(model, 2, params, samples)
    draws = [tree_map(lambda t, s=s: t[s], eps) for s in range(samples)]
    loop = best_of(lambda: torch.stack([model.apply(params, x, e) for e in draws]))
    print(f"loop over samples: {loop:8.1f} ms")
    for chunk in (None, 5000, 2000, 1000, 500, 200, 100, 50):
        ms = best_of(lambda c=chunk: predict(model, params, x, key=2, n_samples=samples, batch_size=c))
        print(f"vmap, batch_size={chunk}: {ms:8.1f} ms")


if __name__ == "__main__":
    main()

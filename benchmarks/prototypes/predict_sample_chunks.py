"""Prototype: vmap over chunks of the S samples in prediction (13-512-1, S=100).

``python -m benchmarks.prototypes.predict_sample_chunks [rows]``. At many rows the
full vmap materialises (S, rows, 512) activations (hundreds of MB) and runs at
memory bandwidth; a few samples at a time keep the working set small.
"""

import sys
import time

import torch
from torch.func import vmap

from benchmarks.cases import NETS, data
from fblitz.layers import sample_noise
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


def main(rows=2000, samples=100):
    torch.set_num_threads(2)
    net = NETS["13-512-1"]
    model = net.build()
    params = model.init(Key(0))
    x, _ = data(net, rows, 1)
    eps = sample_noise(model, 2, params, samples)
    mapped = vmap(model.apply, in_dims=(None, None, 0))
    for chunk in (samples, 32, 8, 4, 1):

        def run(c=chunk):
            parts = [tree_map(lambda t, i=i: t[i : i + c], eps) for i in range(0, samples, c)]
            return torch.cat([mapped(params, x, part) for part in parts])

        print(f"{rows} rows, vmap over chunks of {chunk:3d} samples: {best_of(run):8.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)

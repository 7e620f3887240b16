"""Benchmark harness: fblitz (vmap, eager and compiled) vs BLiTZ vs a Python loop vs hand-batched torch.

Run ``python -m benchmarks.run --help`` from the repository root; see ``benchmarks/README.md``
for the method and the latest results.
"""

"""The benchmarked networks and their data, built the same way for every implementation.

A :class:`Net` describes one network: the fblitz model, the likelihood, the data
shapes, and the name of its hand-batched reference and BLiTZ twin. A
:class:`Case` is one measurement: a network, a batch size, a sample count S and
a task (``"step"``: one ELBO gradient step with an Adam update; ``"predict"``:
``mfvi_forward`` with S draws over a batch of rows).

All data come from explicit keys (:mod:`fblitz.random`); the global torch RNG
is never used.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from fblitz import layers, likelihoods
from fblitz.models import lenet
from fblitz.random import Key, generator, normal


class Net(NamedTuple):
    """A benchmarked network.

    Attributes:
        name: short id used in the tables (e.g. ``"13-512-1"``).
        build: ``() -> fblitz Layer``.
        likelihood: the fblitz likelihood (BLiTZ and the references use the same criterion).
        input_shape: the shape of one input row.
        classes: number of classes for a classifier, 0 for regression with (B, 1) targets.
        kind: ``"mlp"``, ``"cnn"`` or ``"lstm"`` (selects the reference and the BLiTZ twin).
        sizes: layer widths for an MLP (``(13, 512, 1)``), unused otherwise.
    """

    name: str
    build: object
    likelihood: object
    input_shape: tuple
    classes: int
    kind: str
    sizes: tuple = ()


class Case(NamedTuple):
    """One measurement: network, batch size, weight samples S, task."""

    net: Net
    batch: int
    samples: int
    task: str = "step"

    @property
    def label(self) -> str:
        return f"{self.task} {self.net.name} b{self.batch} S{self.samples}"


def _mlp(sizes: tuple) -> object:
    def build():
        parts = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            parts += [layers.linear(n_in, n_out)] + ([layers.relu] if i < len(sizes) - 2 else [])
        return layers.serial(*parts)

    return build


def _lstm_model():
    return layers.serial(
        layers.lstm(1, 16, batch_first=True),
        layers.stateless(lambda out: out[0][:, -1], "last_step"),
        layers.linear(16, 1),
    )


NETS = {
    "13-512-1": Net("13-512-1", _mlp((13, 512, 1)), F.mse_loss, (13,), 0, "mlp", (13, 512, 1)),
    "784-400-400-10": Net(
        "784-400-400-10", _mlp((784, 400, 400, 10)), likelihoods.categorical(), (784,), 10, "mlp", (784, 400, 400, 10)
    ),
    "lenet-8x8": Net(
        "lenet-8x8", lambda: lenet(1, 10, input_size=8, padding=2), likelihoods.categorical(), (1, 8, 8), 10, "cnn"
    ),
    "lstm-16": Net("lstm-16", _lstm_model, F.mse_loss, (16, 1), 0, "lstm"),
}


def data(net: Net, batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs (batch, *input_shape) and targets: class indices or (batch, 1) floats."""
    k_x, k_y = Key(seed).split()
    x = normal(k_x, (batch, *net.input_shape))
    if net.classes:
        y = torch.randint(net.classes, (batch,), generator=generator(k_y))
    else:
        y = normal(k_y, (batch, 1))
    return x, y


def all_cases(quick: bool) -> list[Case]:
    """The case list; ``quick`` keeps the subset the targets need (under two minutes)."""
    nets = NETS
    if quick:
        return [
            Case(nets["13-512-1"], 16, 1),
            Case(nets["13-512-1"], 16, 16),
            Case(nets["13-512-1"], 16, 64),
            Case(nets["784-400-400-10"], 128, 16),
            Case(nets["lenet-8x8"], 64, 4),
            Case(nets["lstm-16"], 32, 4),
            Case(nets["13-512-1"], 10_000, 100, "predict"),
        ]
    cases = []
    for net, batch in (("13-512-1", 16), ("13-512-1", 128), ("784-400-400-10", 128), ("lenet-8x8", 64)):
        cases += [Case(nets[net], batch, s) for s in (1, 4, 16, 64)]
    cases += [Case(nets["lstm-16"], 32, s) for s in (1, 4, 16)]
    cases += [Case(nets["13-512-1"], 10_000, 100, "predict"), Case(nets["lenet-8x8"], 1_000, 100, "predict")]
    return cases


def select(cases: list[Case], pattern: str | None) -> list[Case]:
    """Cases matching every comma-separated part of ``pattern``: a label token (``S16``, ``b128``,
    ``step``) or part of the network name (e.g. ``"13-512,S16"``)."""
    if not pattern:
        return cases
    parts = [p.strip() for p in pattern.split(",") if p.strip()]
    return [c for c in cases if all(p in c.label.split() or p in c.net.name for p in parts)]

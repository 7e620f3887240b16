"""Train/test splits of the UCI protocol: random 90/10 splits or split files on disk.

A split is a pair of disjoint int64 row-index tensors. The standard UCI split
format (Hernandez-Lobato & Adams 2015; Gal & Ghahramani 2016) is a directory
with ``index_train_K.txt`` and ``index_test_K.txt`` for K = 0..n-1, each file
holding 0-based row indices, one per line.

Example:
    >>> splits = random_splits(10, n_splits=2, seed=0)
    >>> [(len(s.train), len(s.test)) for s in splits]
    [(9, 1), (9, 1)]
"""

from __future__ import annotations

import math
import pathlib
import re
from typing import NamedTuple

import numpy as np
import torch

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.random import Key, permutation

_SPLIT_FILE = re.compile(r"index_(train|test)_(\d+)\.txt")


class Split(NamedTuple):
    """Row indices (int64, 1-D) of the training and the test part."""

    train: torch.Tensor
    test: torch.Tensor


def random_splits(n_rows: int, *, n_splits: int, seed: int, test_fraction: float = 0.1) -> list[Split]:
    """``n_splits`` random splits; split K permutes the rows with key ``Key(seed).fold_in(K)``.

    The test part has ``n_rows - floor((1 - test_fraction) * n_rows)`` rows
    (51 of Boston's 506 for 10%); the seed list is therefore fixed by ``seed``.
    """
    n_rows = _checks.integer("n_rows", n_rows, minimum=2)
    n_splits = _checks.integer("n_splits", n_splits, minimum=1)
    test_fraction = _checks.real_number("test_fraction", test_fraction)
    n_train = math.floor((1 - test_fraction) * n_rows)
    if not 1 <= n_train < n_rows:
        raise FblitzValueError(f"test_fraction must leave both parts of {n_rows} rows non-empty, got {test_fraction}")
    key = Key(_checks.integer("seed", seed))
    orders = [permutation(key.fold_in(k), n_rows) for k in range(n_splits)]
    return [Split(order[:n_train], order[n_train:]) for order in orders]


def _read_indices(path: pathlib.Path, n_rows: int) -> torch.Tensor:
    try:
        values = np.atleast_1d(np.loadtxt(path, dtype=np.float64, ndmin=1))
    except ValueError as error:
        raise FblitzValueError(f"{path} must hold one row index per line: {error}") from None
    if values.size == 0:
        raise FblitzValueError(f"{path} holds no row index")
    if values.ndim != 1 or not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        raise FblitzValueError(f"{path} must hold whole-number row indices, one per line")
    # the range is checked on the values as read: converting 1e20 to int64 first would wrap it around
    if values.min() < 0 or values.max() >= n_rows:
        raise FblitzValueError(
            f"{path} must hold 0-based row indices in [0, {n_rows}), got values from {values.min():.15g} to "
            f"{values.max():.15g}"
        )
    indices = values.astype(np.int64)
    if len(np.unique(indices)) != len(indices):
        raise FblitzValueError(f"{path} lists a row index more than once")
    return torch.from_numpy(indices)


def read_splits(directory: str | pathlib.Path, n_rows: int) -> list[Split]:
    """Read ``index_train_K.txt`` / ``index_test_K.txt`` (K = 0..n-1) from ``directory``.

    Raises:
        FblitzValueError: when the directory is missing or holds no split, a
            file of a pair is missing, the numbering has a gap, an index is out
            of range or repeated, or a row is both in the training and the test part.
    """
    n_rows = _checks.integer("n_rows", n_rows, minimum=1)
    directory = pathlib.Path(directory)
    splits = []
    for k in range(count_splits(directory)):
        train = _read_indices(directory / f"index_train_{k}.txt", n_rows)
        test = _read_indices(directory / f"index_test_{k}.txt", n_rows)
        if np.intersect1d(train.numpy(), test.numpy()).size:
            raise FblitzValueError(f"split {k} in {directory} puts a row in both the training and the test part")
        splits.append(Split(train, test))
    return splits


def count_splits(directory: str | pathlib.Path) -> int:
    """The number of complete splits in ``directory`` (files are named, not read).

    Raises:
        FblitzValueError: as :func:`read_splits` for the directory and the file names.
    """
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FblitzValueError(f"--splits must be a directory of index_train_K.txt/index_test_K.txt, got {directory}")
    found: dict[str, set[int]] = {"train": set(), "test": set()}
    for path in directory.iterdir():
        match = _SPLIT_FILE.fullmatch(path.name)
        if match:
            found[match.group(1)].add(int(match.group(2)))
    if not found["train"] and not found["test"]:
        raise FblitzValueError(f"{directory} holds no index_train_K.txt/index_test_K.txt split files")
    for part, other in (("train", "test"), ("test", "train")):
        missing = sorted(found[other] - found[part])
        if missing:
            raise FblitzValueError(
                f"{directory} has index_{other}_{missing[0]}.txt but no index_{part}_{missing[0]}.txt"
            )
    numbers = sorted(found["train"])
    if numbers != list(range(len(numbers))):
        raise FblitzValueError(f"split files in {directory} must be numbered 0..n-1 without gaps, got {numbers}")
    return len(numbers)

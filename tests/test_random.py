import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.random import Key, as_key, fold_in, normal, permutation, sample_eps, split, uniform
from tests.helpers import assert_trees_equal, mlp


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_same_key_bit_identical(seed):
    a = normal(seed, (5, 3))
    b = normal(Key(seed), (5, 3))
    assert torch.equal(a, b)


def test_split_is_deterministic_and_distinct():
    keys = split(Key(7), 100)
    assert keys == split(7, 100)
    assert len({k.seed for k in keys}) == 100
    assert Key(7) not in keys
    assert split(Key(7), 2) != split(Key(8), 2)


def test_fold_in_differs_from_split_and_per_data():
    k = Key(3)
    folded = {fold_in(k, i).seed for i in range(50)}
    assert len(folded) == 50
    assert not folded & {s.seed for s in split(k, 50)}


def test_different_keys_give_different_noise():
    assert not torch.equal(normal(1, (10,)), normal(2, (10,)))


def test_invalid_keys_are_rejected():
    with pytest.raises(FblitzTypeError, match="key must be a fblitz.random.Key or an int"):
        as_key(1.5)
    with pytest.raises(FblitzTypeError):
        as_key(True)
    with pytest.raises(FblitzValueError, match="num must be >= 1"):
        split(0, 0)


def test_global_rng_is_never_touched():
    state = torch.get_rng_state()
    model = mlp(3, 8, 2)
    params = model.init(0)
    sample_eps(1, params, 4)
    normal(2, (3,))
    uniform(3, (3,))
    permutation(4, 10)
    assert torch.equal(state, torch.get_rng_state())


def test_sample_eps_layout_and_determinism():
    params = mlp(3, 8, 2).init(0)
    params["extra"] = torch.ones(2)  # a deterministic leaf
    eps = sample_eps(5, params, 4)
    assert eps["0"]["weight"].shape == (4, 8, 3)
    assert eps["2"]["bias"].shape == (4, 2)
    assert eps["extra"] == () and eps["1"] == {}
    assert_trees_equal(eps, sample_eps(5, params, 4))
    single = sample_eps(5, params)
    assert single["0"]["weight"].shape == (8, 3)


def test_sample_eps_follows_dtypes():
    params = {
        "a": {"mu": torch.zeros(3, dtype=torch.float64), "rho": torch.zeros(3, dtype=torch.float64)},
        "b": {"mu": torch.zeros(2), "rho": torch.zeros(2)},
    }
    eps = sample_eps(0, params, 2)
    assert eps["a"].dtype == torch.float64 and eps["b"].dtype == torch.float32


def _correlation(a, b):
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_sample_eps_statistics():
    # 2 * 10^5 draws per leaf: the mean is within 5 standard errors of 0, the variance within 2%
    # (6 standard errors). Over 20 seeds the largest |z| of these five checks was 3.1.
    params = {name: {"mu": torch.zeros(1000), "rho": torch.zeros(1000)} for name in ("w", "v")}
    eps = sample_eps(11, params, 200)
    w, v = eps["w"].double(), eps["v"].double()
    assert abs(float(w.mean())) < 5 / math.sqrt(w.numel())
    assert abs(float(w.var()) - 1) < 0.02
    # neighbouring entries, consecutive samples and the two leaves are uncorrelated: each correlation
    # is over about 2 * 10^5 pairs, standard error 0.0022, bound 5 standard errors (noise reused
    # across entries, samples or leaves would give 1)
    for a, b in ((w[:, :-1], w[:, 1:]), (w[:-1], w[1:]), (w, v)):
        assert abs(_correlation(a, b)) < 5 / math.sqrt(b.numel())


def test_sample_eps_rejects_bad_input():
    with pytest.raises(FblitzValueError, match="no Gaussian"):
        sample_eps(0, {"a": torch.zeros(2)}, 2)
    with pytest.raises(FblitzValueError, match="n_samples must be >= 1"):
        sample_eps(0, mlp(2, 2).init(0), 0)
    with pytest.raises(FblitzTypeError, match="floating-point"):
        sample_eps(0, {"a": {"mu": torch.zeros(2, dtype=torch.int64), "rho": torch.zeros(2)}}, 1)


def test_permutation_is_a_permutation():
    perm = permutation(0, 50)
    assert sorted(perm.tolist()) == list(range(50))
    assert torch.equal(perm, permutation(0, 50))

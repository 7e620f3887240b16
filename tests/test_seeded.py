import math

import pytest
import torch
from torch.func import vmap

from fblitz import seeded
from fblitz.errors import FblitzTypeError


def test_seeds_are_reproducible_and_distinct():
    a, b = seeded.seeds(7, 4), seeded.seeds(7, 4)
    assert a.dtype == torch.int64 and torch.equal(a, b) and len(set(a.tolist())) == 4
    assert seeded.seeds(7).shape == () and not torch.equal(seeded.seeds(8, 4), a)


def test_vmap_over_seeds_equals_each_seed_alone():
    s = seeded.seeds(1, 3)
    batched = vmap(lambda t: seeded.normal(t, (4, 5), dtype=torch.float64))(s)
    for i in range(3):
        assert torch.equal(batched[i], seeded.normal(s[i], (4, 5), dtype=torch.float64))


def test_uniform_moments_and_range():
    # 1e6 draws: mean 1/2 and variance 1/12 within ~6 standard errors
    u = seeded.uniform(seeded.seeds(2), (1_000_000,), dtype=torch.float64)
    assert 0 < float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 6 * math.sqrt(1 / 12 / 1e6)
    assert abs(float(u.var()) - 1 / 12) < 6 * math.sqrt(1 / 180 / 1e6)
    # no visible serial correlation between neighbours
    assert abs(float(torch.corrcoef(torch.stack([u[:-1], u[1:]]))[0, 1])) < 6e-3


def test_normal_moments_and_tail():
    z = seeded.normal(seeded.seeds(3), (1_000_000,), dtype=torch.float64)
    assert abs(float(z.mean())) < 6e-3 and abs(float(z.var()) - 1) < 1e-2
    assert abs(float(z.pow(3).mean())) < 2e-2 and abs(float(z.pow(4).mean()) - 3) < 5e-2
    # P(|z| > 2) = 0.0455
    assert abs(float((z.abs() > 2).double().mean()) - 0.0455) < 1.5e-3


def test_streams_and_seeds_are_uncorrelated():
    s = seeded.seeds(4)
    a = seeded.normal(seeded.stream(s, 0), (200_000,), dtype=torch.float64)
    b = seeded.normal(seeded.stream(s, 1), (200_000,), dtype=torch.float64)
    c = seeded.normal(s + 1, (200_000,), dtype=torch.float64)
    for u, v in [(a, b), (a, c)]:
        assert abs(float(torch.corrcoef(torch.stack([u, v]))[0, 1])) < 0.015


def test_many_streams_are_distinct():
    s = seeded.seeds(6)
    draws = {tuple(seeded.uniform(seeded.stream(s, i), (2,)).tolist()) for i in range(50)}
    assert len(draws) == 50


def test_rademacher_signs_balanced():
    r = seeded.rademacher(seeded.seeds(5), (100_000,))
    assert set(r.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(r.mean())) < 0.02


def test_bad_seed_is_rejected():
    with pytest.raises(FblitzTypeError, match="seed must be a 0-dim int64 tensor"):
        seeded.normal(torch.tensor([1, 2]), (3,))
    with pytest.raises(FblitzTypeError, match="seed"):
        seeded.uniform(3, (3,))

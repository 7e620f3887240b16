import math

import hypothesis
import hypothesis.strategies as st
import pytest
import torch
from torch.func import vmap

from fblitz import seeded
from fblitz.errors import FblitzTypeError, FblitzValueError


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
        seeded.normal(torch.tensor([1, 2, 3]), (3,))
    with pytest.raises(FblitzTypeError, match="seed"):
        seeded.uniform(3, (3,))
    with pytest.raises(FblitzTypeError, match="seed must be a 0-dim int64 tensor .* offset seed of shape"):
        seeded.rademacher(torch.tensor([1, 2]), (3,))  # (S,) seeds need vmap
    with pytest.raises(FblitzTypeError, match="seed must have shape"):
        seeded.offset_rows(torch.zeros(2, 3, dtype=torch.int64), 1)
    with pytest.raises(FblitzTypeError, match="seed must be an int64 tensor"):
        seeded.offset_rows(torch.tensor(1.0), 2)
    with pytest.raises(FblitzValueError, match="rows must be >= 0"):
        seeded.offset_rows(seeded.seeds(0), -1)


DRAWS = [seeded.uniform, seeded.normal, seeded.rademacher]


@hypothesis.given(
    rows=st.integers(0, 9), n=st.integers(0, 6), rest=st.lists(st.integers(1, 3), max_size=2), seed=st.integers(0, 99)
)
def test_offset_rows_draws_the_rows_of_the_larger_batch(rows, n, rest, seed):
    s = seeded.seeds(seed)
    for draw in DRAWS:
        whole = draw(s, (rows + n, *rest), dtype=torch.float64)
        assert torch.equal(draw(seeded.offset_rows(s, rows), (n, *rest), dtype=torch.float64), whole[rows:])
    # offsets add up, and streams keep them
    twice = seeded.offset_rows(seeded.offset_rows(s, 1), rows)
    assert torch.equal(seeded.normal(twice, (n, 2)), seeded.normal(s, (rows + 1 + n, 2))[rows + 1 :])
    assert torch.equal(
        seeded.normal(seeded.stream(seeded.offset_rows(s, rows), 3), (n, 2)),
        seeded.normal(seeded.stream(s, 3), (rows + n, 2))[rows:],
    )


def test_offset_zero_changes_nothing_and_vmap_maps_offset_seeds():
    s = seeded.seeds(3, 4)
    offset = seeded.offset_rows(s, 0)
    assert offset.shape == (4, 1, 2) and torch.equal(offset[:, 0, 0], s)
    # two plain seeds are not one offset seed: (S,) = (2,) gets its own offsets
    assert seeded.offset_rows(s[:2], 5).shape == (2, 1, 2)
    batched = vmap(lambda t: seeded.normal(t, (3, 2)))(seeded.offset_rows(s, 5))
    for i in range(4):
        assert torch.equal(batched[i], seeded.normal(s[i], (8, 2))[5:])
    # a tensor offset (as a traced step would pass it) works like an int
    assert torch.equal(seeded.offset_rows(s, torch.tensor(5)), seeded.offset_rows(s, 5))


def test_numbers_are_made_on_the_requested_device():
    # meta has no data and refuses CPU tensors mixed in: the words and the moved seed must both be on meta
    s = seeded.seeds(1, 3)
    assert s.device.type == "cpu" and seeded.seeds(1, 3, device="meta").device.type == "meta"
    for draw in DRAWS:
        for seed in (s[0], seeded.offset_rows(s, 2)[1]):  # a plain and an offset seed
            out = draw(seed, (4, 3), dtype=torch.float64, device="meta")
            assert out.device.type == "meta" and out.shape == (4, 3) and out.dtype == torch.float64
            assert draw(seed, (2,)).device.type == "cpu"  # default: the seed's device

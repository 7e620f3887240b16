"""Regression coverage and calibration curves; classification ECE and reliability bins."""

import math
import statistics

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from fblitz import metrics
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.random import uniform
from tests.helpers import randn

# --- regression: interval coverage and the calibration curve


def test_gaussian_coverage_by_hand():
    targets = torch.tensor([0.0, 1.0, 1.7, -1.6, 3.0])  # the 90% interval is +/- 1.645
    mean, std = torch.zeros(5), torch.ones(5)
    assert metrics.interval_coverage(targets, mean=mean, std=std, level=0.9) == pytest.approx(3 / 5)
    assert metrics.interval_coverage(targets, mean=mean, std=std, level=0.5) == pytest.approx(1 / 5)  # +/- 0.674
    assert metrics.interval_coverage(2 * targets, mean=mean, std=2 * std, level=0.9) == pytest.approx(3 / 5)


def test_sample_coverage_uses_the_empirical_quantiles():
    samples = torch.arange(101, dtype=torch.float64).unsqueeze(1).expand(101, 5)  # 90%: [5, 95]
    targets = torch.tensor([4.0, 5.0, 50.0, 95.0, 96.0], dtype=torch.float64)
    assert metrics.interval_coverage(targets, samples=samples, level=0.9) == pytest.approx(3 / 5)
    assert metrics.interval_coverage(targets, samples=samples, level=0.1) == pytest.approx(1 / 5)  # [45, 55]


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95])
def test_targets_drawn_from_the_predictive_are_covered_at_the_nominal_rate(level):
    n = 40_000
    mean, std = randn(0, n, dtype=torch.float64), uniform(1, (n,), dtype=torch.float64) + 0.5
    targets = mean + std * randn(2, n, dtype=torch.float64)
    gaussian = metrics.interval_coverage(targets, mean=mean, std=std, level=level)
    assert gaussian == pytest.approx(level, abs=0.01)
    # the same predictive given as samples (500 draws for 2000 points)
    m, s = mean[:2000], std[:2000]
    samples = m + s * randn(3, 500, 2000, dtype=torch.float64)
    assert metrics.interval_coverage(targets[:2000], samples=samples, level=level) == pytest.approx(level, abs=0.03)


def test_calibration_curve_is_flat_for_a_calibrated_predictive_and_low_when_overconfident():
    n = 20_000
    mean, std = randn(0, n, dtype=torch.float64), torch.full((n,), 2.0, dtype=torch.float64)
    targets = mean + std * randn(1, n, dtype=torch.float64)
    curve = metrics.calibration_curve(targets, mean=mean, std=std)
    assert curve.nominal.tolist() == pytest.approx([0.05 * i for i in range(1, 20)])
    assert curve.mean_absolute_error < 0.01
    overconfident = metrics.calibration_curve(targets, mean=mean, std=std / 2, levels=[0.5, 0.9])
    expected = [
        2 * statistics.NormalDist().cdf(statistics.NormalDist().inv_cdf(0.5 + p / 2) / 2) - 1 for p in (0.5, 0.9)
    ]
    assert overconfident.observed.tolist() == pytest.approx(expected, abs=0.01)  # 0.26 and 0.59
    assert bool((overconfident.observed < overconfident.nominal).all())


def test_calibration_curve_levels_as_a_tensor_match_single_coverages():
    targets, mean = randn(0, 50), randn(1, 50)
    std = torch.ones(50)
    curve = metrics.calibration_curve(targets, mean=mean, std=std, levels=torch.tensor([0.2, 0.6]))
    for nominal, observed in zip(curve.nominal.tolist(), curve.observed.tolist()):
        assert observed == metrics.interval_coverage(targets, mean=mean, std=std, level=nominal)


def test_coverage_errors_name_the_argument():
    y, ones = torch.zeros(3), torch.ones(3)
    with pytest.raises(FblitzValueError, match="either samples or both mean and std"):
        metrics.interval_coverage(y, mean=ones)
    with pytest.raises(FblitzValueError, match="not both"):
        metrics.interval_coverage(y, samples=torch.zeros(4, 3), mean=ones, std=ones)
    with pytest.raises(FblitzValueError, match=r"std must have the shape of targets, \(3,\), got \(1,\)"):
        metrics.interval_coverage(y, mean=ones, std=torch.ones(1))
    with pytest.raises(FblitzValueError, match="S >= 2"):
        metrics.interval_coverage(y, samples=torch.zeros(1, 3))
    with pytest.raises(FblitzValueError, match=r"samples\[0\] must have the shape of targets"):
        metrics.interval_coverage(y, samples=torch.zeros(4, 3, 1))
    with pytest.raises(FblitzValueError, match="level must lie strictly between 0 and 1, got 1.0"):
        metrics.interval_coverage(y, mean=ones, std=ones, level=1.0)
    with pytest.raises(FblitzValueError, match="std must be >= 0"):
        metrics.interval_coverage(y, mean=ones, std=-ones)
    with pytest.raises(FblitzTypeError, match="targets must be a floating-point tensor"):
        metrics.interval_coverage(torch.zeros(3, dtype=torch.int64), mean=ones, std=ones)
    with pytest.raises(FblitzValueError, match="strictly increasing"):
        metrics.calibration_curve(y, mean=ones, std=ones, levels=[0.5, 0.5])
    with pytest.raises(FblitzValueError, match=r"levels\[1\] must lie strictly between 0 and 1"):
        metrics.calibration_curve(y, mean=ones, std=ones, levels=[0.5, 1.5])
    with pytest.raises(FblitzValueError, match="non-empty sequence"):
        metrics.calibration_curve(y, mean=ones, std=ones, levels=[])


# --- classification: expected calibration error


def reference_ece(probs, labels, n_bins, binning):
    """A direct per-bin loop, independent of the vectorised implementation."""
    confidence, predicted = probs.double().max(dim=1)
    rows = list(range(len(labels)))
    if binning == "equal_width":
        groups = [
            [i for i in rows if (b == 0 or confidence[i] > b / n_bins) and confidence[i] <= (b + 1) / n_bins]
            for b in range(n_bins)
        ]
    else:
        ranked = sorted(rows, key=lambda i: (float(confidence[i]), i))
        size, extra = divmod(len(rows), n_bins)
        bounds = [b * size + min(b, extra) for b in range(n_bins + 1)]
        groups = [ranked[bounds[b] : bounds[b + 1]] for b in range(n_bins)]
    total = 0.0
    for group in groups:
        if group:
            acc = sum(float(predicted[i] == labels[i]) for i in group) / len(group)
            conf = sum(float(confidence[i]) for i in group) / len(group)
            total += len(group) / len(rows) * abs(acc - conf)
    return total


def test_ece_and_bins_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.55, 0.45]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 1, 0])
    # equal width, 4 bins of 0.25: all confidences in (0.5, 0.75] or (0.75, 1]
    result = metrics.expected_calibration_error(probs, labels, n_bins=4)
    bins = result.bins
    assert bins.count.tolist() == [0, 0, 3, 2]
    assert bins.lower.tolist() == [0.0, 0.25, 0.5, 0.75] and bins.upper.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert bins.confidence[2:].tolist() == pytest.approx([(0.7 + 0.6 + 0.55) / 3, 0.85])
    assert bins.accuracy[2:].tolist() == pytest.approx([2 / 3, 0.5])  # rows 2, 4 right; rows 0 right, 1 wrong
    assert math.isnan(bins.confidence[0]) and math.isnan(bins.accuracy[1])
    assert result.ece == pytest.approx(3 / 5 * abs(2 / 3 - 1.85 / 3) + 2 / 5 * 0.35)
    # equal mass, 2 bins: sorted confidences 0.55 0.6 0.7 | 0.8 0.9 (sizes 3 and 2)
    mass = metrics.expected_calibration_error(probs, labels, n_bins=2, binning="equal_mass")
    assert mass.bins.count.tolist() == [3, 2]
    assert mass.bins.lower.tolist() == [0.55, 0.8] and mass.bins.upper.tolist() == [0.7, 0.9]
    assert mass.ece == pytest.approx(result.ece)  # the same grouping here


def test_equal_width_bins_are_closed_on_the_right():
    confidence = torch.tensor([0.5, 0.75, 1.0, 0.76], dtype=torch.float64)
    probs = torch.stack([confidence, 1 - confidence], dim=1)
    bins = metrics.expected_calibration_error(probs, torch.zeros(4, dtype=torch.int64), n_bins=4).bins
    assert bins.count.tolist() == [0, 1, 1, 2]  # (0.25, 0.5], (0.5, 0.75], (0.75, 1]


def test_equal_mass_bins_adapt_where_equal_width_bins_pool():
    # all confidences in (0.9, 1]: one equal-width bin hides the miscalibration that equal-mass bins show
    confidence = torch.tensor([0.91, 0.92, 0.93, 0.94, 0.97, 0.98, 0.99, 0.995], dtype=torch.float64)
    probs = torch.stack([confidence, 1 - confidence], dim=1)
    labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0])  # the least confident half is always wrong
    width = metrics.expected_calibration_error(probs, labels, n_bins=10)
    mass = metrics.expected_calibration_error(probs, labels, n_bins=2, binning="equal_mass")
    assert width.bins.count.tolist() == [0] * 9 + [8]
    assert width.ece == pytest.approx(abs(0.5 - float(confidence.mean())))
    assert mass.ece == pytest.approx(0.5 * 0.925 + 0.5 * (1 - 0.98375))


def softmax_rows(seed, n, c, scale):
    return torch.softmax(scale * randn(seed, n, c, dtype=torch.float64), dim=1)


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 60),
    c=st.integers(2, 5),
    n_bins=st.integers(1, 20),
    scale=st.floats(0.1, 5.0),
    binning=st.sampled_from(metrics.BINNINGS),
)
def test_ece_matches_a_reference_loop_and_lies_in_the_unit_interval(seed, n, c, n_bins, scale, binning):
    probs = softmax_rows(seed, n, c, scale)
    labels = (uniform(seed + 1, (n,)) * c).long()
    result = metrics.expected_calibration_error(probs, labels, n_bins=n_bins, binning=binning)
    assert 0.0 <= result.ece <= 1.0
    assert result.ece == pytest.approx(reference_ece(probs, labels, n_bins, binning), abs=1e-12)
    assert int(result.bins.count.sum()) == n and result.bins.count.shape == (n_bins,)
    if binning == "equal_mass":
        assert int(result.bins.count.max()) - int(result.bins.count.min()) <= 1


@given(
    groups=st.lists(st.integers(5, 10), min_size=1, max_size=8),  # 10 rows of confidence k/10, k of them right
    n_bins=st.integers(1, 12),
    binning=st.sampled_from(metrics.BINNINGS),
)
def test_ece_is_zero_for_perfectly_calibrated_data(groups, n_bins, binning):
    if binning == "equal_mass":
        n_bins = len(groups)  # every equal-mass bin then holds whole groups
    confidence = torch.tensor([k / 10 for k in groups for _ in range(10)], dtype=torch.float64)
    labels = torch.tensor([0 if j < k else 1 for k in groups for j in range(10)])
    probs = torch.stack([confidence, 1 - confidence], dim=1)
    result = metrics.expected_calibration_error(probs, labels, n_bins=n_bins, binning=binning)
    assert result.ece == pytest.approx(0.0, abs=1e-12)


def test_ece_of_always_wrong_certain_predictions_is_one():
    probs = torch.tensor([[1.0, 0.0, 0.0]] * 4)
    assert metrics.expected_calibration_error(probs, torch.tensor([1, 2, 1, 2])).ece == pytest.approx(1.0)


def test_ece_errors_name_the_argument():
    probs, labels = torch.tensor([[0.7, 0.3], [0.4, 0.6]]), torch.tensor([0, 1])
    ece = metrics.expected_calibration_error
    with pytest.raises(FblitzValueError, match="probs must sum to 1 over its last.*softmax"):
        ece(torch.tensor([[0.5, 0.6], [0.5, 0.5]]), labels)
    with pytest.raises(FblitzValueError, match=r"probs must hold probabilities in \[0, 1\]"):
        ece(torch.tensor([[1.5, -0.5], [0.5, 0.5]]), labels)
    with pytest.raises(FblitzValueError, match="probs must have 2 dimension"):
        ece(torch.tensor([0.7, 0.3]), labels)
    with pytest.raises(FblitzTypeError, match="labels must hold integer class indices"):
        ece(probs, labels.float())
    with pytest.raises(FblitzValueError, match=r"labels must lie in \[0, 2\)"):
        ece(probs, torch.tensor([0, 2]))
    with pytest.raises(FblitzValueError, match=r"one class index per row of the probabilities \(2\), got 3"):
        ece(probs, torch.tensor([0, 1, 1]))
    with pytest.raises(FblitzValueError, match="binning must be one of"):
        ece(probs, labels, binning="quantile")
    with pytest.raises(FblitzValueError, match="n_bins must be >= 1"):
        ece(probs, labels, n_bins=0)
    with pytest.raises(FblitzValueError, match="at least one row"):
        ece(torch.zeros(0, 2), torch.zeros(0, dtype=torch.int64))

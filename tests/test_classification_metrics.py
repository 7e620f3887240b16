"""Accuracy, Brier score, NLL (against scikit-learn) and the entropy decomposition."""

import math

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

from fblitz import metrics
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.random import uniform
from tests.helpers import randn

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def random_probs(seed, *shape, scale=1.0):
    return torch.softmax(scale * randn(seed, *shape, dtype=torch.float64), dim=-1)


def random_labels(seed, n, c):
    return (uniform(seed, (n,)) * c).long()


def test_by_hand():
    probs = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 2, 2])
    assert metrics.accuracy(probs, labels) == pytest.approx(2 / 3)
    brier = ((0.2**2 + 0.1**2 + 0.1**2) + (0.2**2 + 0.5**2 + 0.7**2) + (0.3**2 + 0.3**2 + 0.6**2)) / 3
    assert metrics.brier_score(probs, labels) == pytest.approx(brier)
    assert metrics.classification_nll(probs, labels) == pytest.approx(
        -(math.log(0.8) + math.log(0.3) + math.log(0.4)) / 3
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_scikit_learn(seed):
    probs = random_probs(seed, 200, 2, scale=2.0)
    labels = random_labels(seed + 10, 200, 2)
    p1, y = probs[:, 1].numpy(), labels.numpy()
    assert metrics.brier_score(probs, labels) == pytest.approx(2 * sklearn_metrics.brier_score_loss(y, p1))
    assert metrics.classification_nll(probs, labels) == pytest.approx(sklearn_metrics.log_loss(y, probs.numpy()))
    assert metrics.accuracy(probs, labels) == pytest.approx(sklearn_metrics.accuracy_score(y, probs.argmax(1).numpy()))


def test_multiclass_nll_and_accuracy_match_scikit_learn():
    probs = random_probs(3, 300, 5, scale=1.5)
    labels = random_labels(4, 300, 5)
    expected = sklearn_metrics.log_loss(labels.numpy(), probs.numpy(), labels=list(range(5)))
    assert metrics.classification_nll(probs, labels) == pytest.approx(expected)
    assert metrics.classification_nll(probs.float(), labels) == pytest.approx(expected, rel=1e-5)
    assert metrics.accuracy(probs, labels) == sklearn_metrics.accuracy_score(labels.numpy(), probs.argmax(1).numpy())


def test_brier_bounds_and_nll_of_a_zero_probability():
    certain = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert metrics.brier_score(certain, torch.tensor([0, 1])) == 0.0
    assert metrics.brier_score(certain, torch.tensor([1, 0])) == 2.0
    assert metrics.classification_nll(certain, torch.tensor([0, 1])) == 0.0
    assert metrics.classification_nll(certain, torch.tensor([1, 1])) == math.inf  # nothing is clipped


def test_classification_errors_name_the_argument():
    probs, labels = torch.tensor([[0.7, 0.3], [0.4, 0.6]]), torch.tensor([0, 1])
    for metric in (metrics.accuracy, metrics.brier_score, metrics.classification_nll):
        with pytest.raises(FblitzValueError, match="probs must sum to 1.*worst row sums to 1.3"):
            metric(torch.tensor([[0.7, 0.6], [0.4, 0.6]]), labels)
        with pytest.raises(FblitzTypeError, match="labels must hold integer class indices, got dtype torch.bool"):
            metric(probs, labels.bool())
        with pytest.raises(FblitzValueError, match="labels must have 1 dimension"):
            metric(probs, labels.unsqueeze(1))
        with pytest.raises(FblitzValueError, match="at least 2 classes"):
            metric(torch.ones(2, 1), labels)
        with pytest.raises(FblitzValueError, match="probs contains NaN"):
            metric(torch.tensor([[math.nan, 0.5], [0.5, 0.5]]), labels)
        with pytest.raises(FblitzTypeError, match="probs must be a torch.Tensor"):
            metric([[0.7, 0.3]], labels[:1])


def test_float32_softmax_rounding_is_accepted():
    probs = torch.softmax(10 * randn(0, 100, 1000), dim=1)
    assert 0.0 <= metrics.accuracy(probs, random_labels(1, 100, 1000)) <= 1.0


# --- uncertainty decomposition from (S, N, C) sampled probabilities


def test_decomposition_by_hand():
    samples = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]], dtype=torch.float64)  # (S=2, N=2, C=2)
    log2 = math.log(2)
    assert metrics.predictive_entropy(samples).tolist() == pytest.approx([log2, log2])
    assert metrics.expected_entropy(samples).tolist() == pytest.approx([0.0, log2])
    assert metrics.mutual_information(samples).tolist() == pytest.approx([log2, 0.0])
    total, aleatoric, epistemic = metrics.uncertainty_decomposition(samples)
    assert torch.equal(total, metrics.predictive_entropy(samples)) and torch.equal(
        aleatoric, metrics.expected_entropy(samples)
    )


@given(
    seed=st.integers(0, 10_000),
    s=st.integers(1, 8),
    n=st.integers(1, 6),
    c=st.integers(2, 6),
    scale=st.floats(0.0, 8.0),
)
def test_mutual_information_is_non_negative_and_the_entropy_gap(seed, s, n, c, scale):
    samples = random_probs(seed, s, n, c, scale=scale)
    total = metrics.predictive_entropy(samples)
    aleatoric = metrics.expected_entropy(samples)
    epistemic = metrics.mutual_information(samples)
    assert total.shape == aleatoric.shape == epistemic.shape == (n,)
    assert bool((epistemic >= 0).all())
    assert torch.allclose(epistemic, total - aleatoric, atol=1e-12)
    assert bool((total <= math.log(c) + 1e-12).all()) and bool((aleatoric >= 0).all())
    agreeing = samples[:1].expand(s, n, c)  # every draw the same: no epistemic uncertainty
    assert torch.allclose(metrics.mutual_information(agreeing), torch.zeros(n, dtype=torch.float64), atol=1e-12)


def test_uncertainty_errors_name_the_argument():
    with pytest.raises(FblitzValueError, match="prob_samples must have 3 dimension"):
        metrics.predictive_entropy(torch.tensor([[0.5, 0.5]]))
    with pytest.raises(FblitzValueError, match="prob_samples must sum to 1"):
        metrics.mutual_information(torch.full((2, 3, 4), 0.5))
    with pytest.raises(FblitzTypeError, match="prob_samples must be a floating-point tensor"):
        metrics.expected_entropy(torch.ones(2, 3, 1, dtype=torch.int64))

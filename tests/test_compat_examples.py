"""BLiTZ's own examples run on fblitz.compat with only the imports changed, and train.

Each script below is written against BLiTZ (``from blitz... import``), the way
BLiTZ's README (Boston regression, ../shared/SEED.md) and its MNIST LeNet
example use it; the test swaps ``blitz`` for ``fblitz.compat`` in the import
lines and runs the text. Epochs are cut to a few steps to keep the tests fast;
the data come from fblitz's bundled Boston table and scikit-learn's digits
(8x8 images upsampled to MNIST's 28x28 so the LeNet is BLiTZ's, unchanged).
"""

import re

import numpy as np
import pytest
import torch

from fblitz.datasets import load_boston

sklearn_datasets = pytest.importorskip("sklearn.datasets")

BOSTON_SCRIPT = """
import torch
import torch.nn as nn
import torch.optim as optim
from blitz.modules import BayesianLinear
from blitz.utils import variational_estimator


@variational_estimator
class BayesianRegressor(nn.Module):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.blinear1 = BayesianLinear(input_dim, 512)
        self.blinear2 = BayesianLinear(512, output_dim)

    def forward(self, x):
        x_ = self.blinear1(x)
        return self.blinear2(x_)


def evaluate_regression(regressor, X, y, samples=100, std_multiplier=2):
    preds = torch.stack([regressor(X) for i in range(samples)])
    means, stds = preds.mean(axis=0), preds.std(axis=0)
    ci_upper, ci_lower = means + (std_multiplier * stds), means - (std_multiplier * stds)
    ic_acc = ((ci_lower <= y) * (ci_upper >= y)).float().mean()
    return ic_acc, (ci_upper >= y).float().mean(), (ci_lower <= y).float().mean()


regressor = BayesianRegressor(13, 1)
optimizer = optim.Adam(regressor.parameters(), lr=0.01)
criterion = torch.nn.MSELoss()
ds_train = torch.utils.data.TensorDataset(X_train, y_train)
dataloader_train = torch.utils.data.DataLoader(ds_train, batch_size=16, shuffle=True)
losses = []
for epoch in range(EPOCHS):
    for i, (datapoints, labels) in enumerate(dataloader_train):
        optimizer.zero_grad()
        loss = regressor.sample_elbo(inputs=datapoints, labels=labels, criterion=criterion, sample_nbr=3,
                                     complexity_cost_weight=1 / X_train.shape[0])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
ic_acc, under_ci_upper, over_ci_lower = evaluate_regression(regressor, X_test, y_test, samples=25, std_multiplier=3)
"""

LENET_SCRIPT = """
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from blitz.modules import BayesianLinear, BayesianConv2d
from blitz.losses import kl_divergence_from_nn
from blitz.utils import variational_estimator


@variational_estimator
class BayesianCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = BayesianConv2d(1, 6, (5, 5))
        self.conv2 = BayesianConv2d(6, 16, (5, 5))
        self.fc1 = BayesianLinear(256, 120)
        self.fc2 = BayesianLinear(120, 84)
        self.fc3 = BayesianLinear(84, 10)

    def forward(self, x):
        out = F.relu(self.conv1(x))
        out = F.max_pool2d(out, 2)
        out = F.relu(self.conv2(out))
        out = F.max_pool2d(out, 2)
        out = out.view(out.size(0), -1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        return self.fc3(out)


classifier = BayesianCNN()
optimizer = optim.Adam(classifier.parameters(), lr=0.001)
criterion = torch.nn.CrossEntropyLoss()
train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X_train, y_train), batch_size=32,
                                           shuffle=True)
losses = []
for epoch in range(EPOCHS):
    for i, (datapoints, labels) in enumerate(train_loader):
        optimizer.zero_grad()
        loss = classifier.sample_elbo(inputs=datapoints, labels=labels, criterion=criterion, sample_nbr=3,
                                      complexity_cost_weight=1 / len(X_train))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
kl = kl_divergence_from_nn(classifier)
with torch.no_grad():
    accuracy = (classifier(X_test).argmax(dim=1) == y_test).float().mean().item()
"""


def _run_with_compat(script: str, **data) -> dict:
    """Swap BLiTZ's imports for fblitz.compat's and run the script (global RNG seeded, then restored)."""
    ported = re.sub(r"^from blitz\.", "from fblitz.compat.", script, flags=re.MULTILINE)
    assert ported.count("fblitz.compat") == script.count("from blitz.")
    namespace = dict(data)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # BLiTZ scripts initialise and shuffle from the global RNG
        exec(compile(ported, "<blitz example>", "exec"), namespace)
    return namespace


def _standardised(a: np.ndarray) -> np.ndarray:
    return (a - a.mean(axis=0)) / a.std(axis=0)


def test_blitz_boston_regressor_runs_and_trains():
    from sklearn.model_selection import train_test_split

    x, y = load_boston()
    x, y = _standardised(x), _standardised(y[:, None])
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=42)
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    run = _run_with_compat(BOSTON_SCRIPT, EPOCHS=1, X_train=as_tensor(x_train), y_train=as_tensor(y_train),
                           X_test=as_tensor(x_test), y_test=as_tensor(y_test))  # fmt: skip
    losses = run["losses"]
    assert len(losses) == 24  # one epoch of 379 rows in batches of 16
    assert np.mean(losses[-5:]) < 0.95 * np.mean(losses[:5])
    assert 0.0 <= float(run["ic_acc"]) <= 1.0 and float(run["under_ci_upper"]) >= float(run["ic_acc"])


def test_blitz_lenet_runs_on_digits_and_trains():
    digits = sklearn_datasets.load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False)
    labels = torch.tensor(digits.target)
    run = _run_with_compat(LENET_SCRIPT, EPOCHS=1, X_train=images[:256], y_train=labels[:256],
                           X_test=images[1500:], y_test=labels[1500:])  # fmt: skip
    losses = run["losses"]
    assert len(losses) == 8
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert run["kl"].shape == () and float(run["kl"].detach()) > 0

"""The two torchvision names BLiTZ's own tests use, offline (for tests/test_blitz_own_tests.py).

BLiTZ's ``variational_estimator_test.py`` reads one batch of MNIST through
``torchvision.datasets.MNIST(root, train, transform=ToTensor(), download=True)``.
The test environment has no torchvision (BLiTZ is installed without its
dependencies) and no network, so the suite's imports are pointed here: an
MNIST-shaped data set of 64 images (1 x 28 x 28, values in [0, 1)) and
labels 0-9, drawn from a fixed key. Only the shapes and dtypes matter to
those tests.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from fblitz.random import Key, uniform


class MNIST(torch.utils.data.Dataset):
    """``torchvision.datasets.MNIST``'s constructor and item format; nothing is read or downloaded."""

    def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
        images_key, labels_key = Key(0 if train else 1).split(2)
        self.images = uniform(images_key, (64, 1, 28, 28))
        self.labels = (uniform(labels_key, (64,)) * 10).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]


class ToTensor:
    """Accepted and unused: the stand-in's images are tensors already."""

    def __call__(self, image):
        return image


datasets = SimpleNamespace(MNIST=MNIST)
transforms = SimpleNamespace(ToTensor=ToTensor)

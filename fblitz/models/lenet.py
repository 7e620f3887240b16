"""A LeNet-style Bayesian CNN (the network of BLiTZ's MNIST example)."""

from __future__ import annotations

from fblitz import _checks
from fblitz.errors import FblitzValueError
from fblitz.layers import Bayes, Layer, conv2d, flatten, linear, max_pool, relu, serial
from fblitz.layers.settings import takes_bayes


@takes_bayes
def lenet(
    in_channels: int = 1, num_classes: int = 10, input_size: int = 28, *, padding: int = 0, bayes: Bayes | None = None
) -> Layer:
    """conv(6, 5x5) - relu - maxpool 2 - conv(16, 5x5) - relu - maxpool 2 - 120 - 84 - classes.

    Every conv and linear layer is Bayesian and takes the settings ``bayes``
    (a :class:`~fblitz.layers.Bayes`; None: each layer's BLiTZ defaults, rho
    starting at -6 in the convs and -7 in the linear layers). With the
    defaults it is BLiTZ's MNIST LeNet for 28x28 inputs; ``padding=2`` keeps
    small inputs such as scikit-learn's 8x8 digits large enough.

    ``apply(params, x, eps)``: x (N, in_channels, input_size, input_size) ->
    logits (N, num_classes).

    Example:
        >>> import torch
        >>> model = lenet(1, 10, input_size=8, padding=2)
        >>> model.apply(model.init(0), torch.zeros(3, 1, 8, 8)).shape
        torch.Size([3, 10])
    """
    in_channels = _checks.integer("in_channels", in_channels, minimum=1)
    num_classes = _checks.integer("num_classes", num_classes, minimum=1)
    input_size = _checks.integer("input_size", input_size, minimum=1)
    padding = _checks.integer("padding", padding, minimum=0)
    size = input_size
    for _ in range(2):  # conv 5x5 then 2x2 max pooling, twice
        size = (size + 2 * padding - 4) // 2
        if size < 1:
            raise FblitzValueError(
                f"input_size {input_size} is too small for LeNet with padding={padding}; use a larger padding"
            )
    return serial(
        conv2d(in_channels, 6, 5, padding=padding, bayes=bayes),
        relu,
        max_pool(2, 2),
        conv2d(6, 16, 5, padding=padding, bayes=bayes),
        relu,
        max_pool(2, 2),
        flatten(),
        linear(16 * size * size, 120, bayes=bayes),
        relu,
        linear(120, 84, bayes=bayes),
        relu,
        linear(84, num_classes, bayes=bayes),
    )

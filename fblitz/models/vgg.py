"""The Bayesian VGG family of BLiTZ's ``models.b_vgg`` (CIFAR-sized, 32x32 inputs)."""

from __future__ import annotations

import math

import torch

from fblitz import _checks
from fblitz.layers import Bayes, Layer, batch_norm2d, conv2d, flatten, linear, max_pool, relu, serial
from fblitz.layers.settings import check_bayes, takes_bayes

# channel widths per conv layer, "M" for 2x2 max pooling (Simonyan & Zisserman 2015, configs A, B, D, E)
VGG_CONFIGS = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


@takes_bayes
def vgg(
    depth: int,
    *,
    batch_norm: bool = False,
    num_classes: int = 10,
    in_channels: int = 3,
    width: float = 1.0,
    bayes: Bayes | None = None,
) -> Layer:
    """A Bayesian VGG: 3x3 Bayesian convs (padding 1) with ReLU and max pooling, then
    Bayesian linear 512 - 512 - ``num_classes``.

    As in BLiTZ, inputs are 32x32 (five poolings leave 1x1x512), the conv
    means start from He initialisation N(0, 2 / (9 * out_channels)) and the
    conv bias means at zero. ``width`` scales every channel count (e.g. 0.125
    for a quick test network); ``bayes`` (a :class:`~fblitz.layers.Bayes`,
    None for each layer's BLiTZ defaults) is given to every Bayesian layer,
    except that the convs' ``mu_std`` is always He's.
    With ``batch_norm=True`` each conv is followed by :func:`batch_norm2d`
    (a stateful layer: see :func:`fblitz.layers.apply_with_state`).

    ``apply(params, x, eps)``: x (N, in_channels, 32, 32) -> logits (N, num_classes).
    """
    depth = _checks.one_of("depth", depth, tuple(VGG_CONFIGS))
    width = _checks.positive("width", width)
    num_classes = _checks.integer("num_classes", num_classes, minimum=1)
    channels = _checks.integer("in_channels", in_channels, minimum=1)
    bayes = check_bayes(bayes)
    parts, conv_names = [], []
    for entry in VGG_CONFIGS[depth]:
        if entry == "M":
            parts.append(max_pool(2, 2))
            continue
        out = max(1, round(entry * width))
        he_std = math.sqrt(2.0 / (9 * out))
        conv_names.append(str(len(parts)))
        parts.append(conv2d(channels, out, 3, padding=1, bayes=bayes.replace(mu_std=he_std)))
        if batch_norm:
            parts.append(batch_norm2d(out))
        parts.append(relu)
        channels = out
    hidden = max(1, round(512 * width))
    parts += [flatten(), linear(channels, hidden, bayes=bayes), relu, linear(hidden, hidden, bayes=bayes), relu]
    parts.append(linear(hidden, num_classes, bayes=bayes))
    model = serial(*parts)

    def init(key, *, dtype=None, device=None):
        params = model.init(key, dtype=dtype, device=device)
        for name in conv_names:  # BLiTZ zeroes the conv bias means
            bias = params[name].get("bias")
            if bias is not None:
                bias["mu"] = torch.zeros_like(bias["mu"])
        return params

    name = f"vgg{depth}{'_bn' if batch_norm else ''}"
    return model._replace(init=init, name=name)


def _variant(depth: int, batch_norm: bool):
    """``vgg{depth}`` or ``vgg{depth}_bn``: :func:`vgg` with the depth (and batch norm) fixed."""

    def variant(**kwargs) -> Layer:
        return vgg(depth, batch_norm=batch_norm, **kwargs)

    config = "ABDE"[tuple(VGG_CONFIGS).index(depth)]
    variant.__name__ = variant.__qualname__ = f"vgg{depth}{'_bn' if batch_norm else ''}"
    variant.__doc__ = f"VGG {depth} (config {config}){' with batch norm' if batch_norm else ''}; see :func:`vgg`."
    return variant


vgg11, vgg11_bn = _variant(11, False), _variant(11, True)
vgg13, vgg13_bn = _variant(13, False), _variant(13, True)
vgg16, vgg16_bn = _variant(16, False), _variant(16, True)
vgg19, vgg19_bn = _variant(19, False), _variant(19, True)

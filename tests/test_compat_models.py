"""fblitz.compat.models.b_vgg: BLiTZ's VGG zoo, its checkpoints load and give BLiTZ's frozen outputs."""

import pytest
import torch
import torch.nn as nn

from fblitz.compat.models import b_vgg
from fblitz.models.vgg import VGG_CONFIGS
from tests.helpers import randn


def test_configurations_are_the_vgg_layer_lists():
    assert [tuple(b_vgg.cfg[k]) for k in "ABDE"] == [VGG_CONFIGS[d] for d in (11, 13, 16, 19)]


@pytest.fixture(scope="module")
def vgg11():
    with torch.random.fork_rng():
        return b_vgg.vgg11()


def test_he_initialisation_of_the_conv_means(vgg11):
    conv = vgg11.features[0]
    assert torch.equal(conv.bias_mu, torch.zeros(64))
    assert abs(conv.weight_mu.std().item() - (2 / (9 * 64)) ** 0.5) < 0.02
    assert isinstance(vgg11.classifier[1], nn.ReLU) and vgg11.classifier[4].out_features == 10


def test_blitz_vgg11_checkpoint_loads_and_frozen_outputs_match(vgg11):
    blitz_vgg = pytest.importorskip("blitz.models.b_vgg")
    assert b_vgg.cfg == blitz_vgg.cfg and b_vgg.__all__ == blitz_vgg.__all__
    with torch.random.fork_rng():
        theirs = blitz_vgg.vgg11()
    ours = vgg11
    ours.load_state_dict(theirs.state_dict())  # strict: BLiTZ's sampler copies are folded in
    assert sorted(ours.state_dict()) == sorted(k for k in theirs.state_dict() if "_sampler." not in k)
    ours.freeze_(), theirs.freeze_()
    x = randn(0, 2, 3, 32, 32)
    torch.testing.assert_close(ours(x), theirs(x).detach(), rtol=1e-4, atol=1e-5)

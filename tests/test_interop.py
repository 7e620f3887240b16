"""fblitz.interop: torchopt's functional optimizers drive fblitz (skipped when torchopt is absent)."""

import pytest
import torch

from fblitz import layers, likelihoods, optim
from fblitz.errors import FblitzTypeError
from fblitz.interop import from_torchopt
from fblitz.training import fit
from fblitz.tree import tree_map
from tests.trees import tree_allclose, tree_equal


def model_and_data():
    model = layers.serial(layers.linear(2, 8), layers.tanh, layers.linear(8, 1))
    x = torch.linspace(-1, 1, 48, dtype=torch.float64).reshape(24, 2)
    return model, model.init(0, dtype=torch.float64), x, torch.sin(x.sum(dim=1, keepdim=True))


def test_torchopt_adam_matches_fblitz_adam_step_for_step_and_is_pure():
    torchopt = pytest.importorskip("torchopt")
    _, params, _, _ = model_and_data()
    ours, theirs = optim.adam(1e-2), from_torchopt(torchopt.adam(1e-2))
    p_ours, p_theirs = params, params
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for step in range(5):
        grads = tree_map(lambda t, k=step + 1: torch.cos(t * k), p_ours)
        kept = tree_map(torch.clone, grads)
        u_ours, s_ours = ours.update(grads, s_ours, p_ours)
        u_theirs, s_theirs = theirs.update(grads, s_theirs, p_theirs)
        assert tree_equal(grads, kept), "torchopt's update modified the gradients in place"
        # torchopt 0.7.3 computes its bias corrections (1 - b**t) in the default dtype (float32),
        # so updates agree to about 1e-5 relative, not to float64 precision
        assert tree_allclose(u_ours, u_theirs, rtol=2e-5, atol=1e-10)
        p_ours, p_theirs = optim.apply_updates(p_ours, u_ours), optim.apply_updates(p_theirs, u_theirs)
    assert tree_allclose(p_ours, p_theirs, rtol=0, atol=1e-6)


def test_fit_trains_with_a_torchopt_chain_like_with_fblitz_optimizers():
    torchopt = pytest.importorskip("torchopt")
    model, params, x, y = model_and_data()
    common = dict(likelihood=likelihoods.gaussian(0.1), key=3, epochs=4, batch_size=8, n_samples=2, progress=False)
    theirs = fit(
        model, params, x, y,
        optimizer=from_torchopt(torchopt.chain(torchopt.clip.clip_grad_norm(1.0), torchopt.sgd(0.05, momentum=0.9))),
        **common,
    )  # fmt: skip
    ours = fit(
        model, params, x, y,
        optimizer=optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.05, momentum=0.9)),
        **common,
    )  # fmt: skip
    # torchopt's clip divides by the norm (no +1e-6 as fblitz's clip): agreement to that size
    assert tree_allclose(theirs.params, ours.params, rtol=1e-5, atol=1e-6)
    assert theirs.history["loss"][-1] < theirs.history["loss"][0]


def test_non_optimizers_are_rejected_naming_the_protocol():
    with pytest.raises(FblitzTypeError, match="transform must have torchopt's init"):
        from_torchopt(torch.optim.SGD)


def test_fit_names_the_adapter_when_given_a_foreign_optimizer():
    model, params, x, y = model_and_data()

    class ForeignAdam:  # torchopt's shape, not wrapped
        init = staticmethod(lambda params: ())
        update = staticmethod(lambda updates, state, *, params=None, inplace=True: (updates, state))

    with pytest.raises(FblitzTypeError, match="wrap a torchopt optimizer with fblitz.interop.from_torchopt"):
        fit(model, params, x, y, likelihood=likelihoods.gaussian(0.1), optimizer=ForeignAdam(), key=0, epochs=1,
            batch_size=8, progress=False)  # fmt: skip

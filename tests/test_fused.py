"""The eager step's fast paths give what the general paths give: autograd vs torch.func.grad,
the fused Adam kernel vs update + apply_updates, the one-kernel non-finite guard vs the norms."""

import pytest
import torch
import torch.nn.functional as F

from fblitz import _checks, _fused, layers, likelihoods, optim
from fblitz._grad import grad_with_aux, traced
from fblitz.kl import make_plan
from fblitz.objectives import elbo_grad
from fblitz.tree import tree_leaves, tree_map
from tests.helpers import mlp, randn


def tree(seed, dtype=torch.float64):
    return {
        "a": {"mu": randn(seed, 4, 3, dtype=dtype), "rho": randn(seed + 1, 4, 3, dtype=dtype)},
        "b": randn(seed + 2, 5, dtype=dtype),
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda: optim.adam(0.01),
        lambda: optim.adam(0.03, 0.5, 0.9, 1e-6),
        lambda: optim.adam(0.01, weight_decay=0.1),
        lambda: optim.adam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_adam_step_equals_update_then_apply(make, dtype):
    opt = make()
    params = tree(0, dtype)
    fused_p, fused_s = params, opt.init(params)
    plain_p, plain_s = params, opt.init(params)
    for step in range(5):
        grads = tree(10 + step, dtype)
        fused_p, fused_s = optim.apply_gradients(opt, grads, fused_s, fused_p)
        updates, plain_s = opt.update(grads, plain_s, plain_p)
        plain_p = optim.apply_updates(plain_p, updates)
    tolerance = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 1e-5, "atol": 1e-7}
    for a, b in zip(tree_leaves((fused_p, fused_s)), tree_leaves((plain_p, plain_s))):
        torch.testing.assert_close(a, b, **tolerance)
    assert int(fused_s.count) == 5


def test_fused_step_leaves_its_inputs_untouched_and_falls_back_when_it_cannot_fuse():
    opt = optim.adam(0.1)
    params, grads = tree(0), tree(5)
    state = opt.init(params)
    before = tree_map(torch.clone, (params, grads, state))
    opt.step(grads, state, params)
    for a, b in zip(tree_leaves((params, grads, state)), tree_leaves(before)):
        assert torch.equal(a, b)
    # params that require grad (differentiating through the update) take the unfused path: outputs keep their graph
    live = tree_map(lambda t: t.clone().requires_grad_(True), params)
    new, _ = opt.step(grads, opt.init(params), live)
    assert all(t.requires_grad for t in tree_leaves(new))
    # a mismatched state is reported by the checked path
    with pytest.raises(Exception, match="state.mu"):
        opt.step(
            grads, state._replace(mu={"a": {"mu": torch.zeros(2), "rho": torch.zeros(2)}, "b": torch.zeros(5)}), params
        )


def test_optimizers_without_a_fused_step_use_update_and_apply():
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1))
    assert opt.step is None
    params, grads = tree(0), tree(3)
    new, _ = optim.apply_gradients(opt, grads, opt.init(params), params)
    updates, _ = opt.update(grads, opt.init(params), params)
    for a, b in zip(tree_leaves(new), tree_leaves(optim.apply_updates(params, updates))):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), None])
def test_the_one_kernel_guard_agrees_with_the_norm_guard(bad):
    grads = [randn(1, 4, 3), randn(2, 5)]
    loss = torch.tensor(1.0)
    if bad is not None:
        grads[1][3] = bad
    fast = _fused.all_finite(loss, grads)
    slow = torch.isfinite(loss + torch.stack(torch._foreach_norm(grads)).sum())
    assert bool(fast) == bool(slow) == (bad is None)
    assert not bool(_fused.all_finite(torch.tensor(float("nan")), [randn(1, 3)]))
    assert bool(_fused.all_finite(loss, []))


def test_autograd_gradients_equal_torch_func_gradients():
    def fn(params, x):
        loss = (params["a"]["mu"] @ x).square().sum() + params["b"].sin().sum()
        return loss, {"loss": loss, "twice": 2 * loss}

    params, x = tree(0), randn(7, 3, 2, dtype=torch.float64)
    run = grad_with_aux(fn)
    grads, aux = run(params, x)
    assert not traced()
    expected, (_, expected_aux) = torch.func.grad_and_value(fn, has_aux=True)(params, x)
    for a, b in zip(tree_leaves((grads, aux)), tree_leaves((expected, expected_aux))):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=0)
    assert all(not t.requires_grad for t in tree_leaves(aux))
    assert torch.equal(grads["a"]["rho"], torch.zeros(4, 3, dtype=torch.float64))  # unused: zeros, as torch.func
    # inside a transform the torch.func path runs (autograd cannot run under vmap)
    batched = torch.func.vmap(lambda x: run(params, x)[0]["b"])(torch.stack([x, x]))
    assert torch.equal(batched[0], grads["b"])


def test_no_value_check_runs_while_trusted():
    x = torch.tensor([1.0, float("nan")])
    with pytest.raises(Exception, match="NaN"):
        _checks.float_input("x", x)
    with _checks.trusted():
        assert _checks.float_input("x", x) is x
    with pytest.raises(Exception, match="NaN"):
        _checks.float_input("x", x)


def test_elbo_grad_is_the_same_under_autograd_and_under_a_transform():
    model = mlp(3, 6, 2, posterior_rho_init=-3.0)
    params = model.init(0, dtype=torch.float64)
    x, y = randn(1, 8, 3, dtype=torch.float64), randn(2, 8, 2, dtype=torch.float64)
    eps = layers.sample_noise(model, 4, params, 3)
    grad_fn = elbo_grad(model, likelihoods.as_likelihood(F.mse_loss))
    plan = make_plan(params, model.priors, "auto")
    eager = grad_fn(params, None, eps, x, y, 0.1, plan)
    # the same call under a (trivial) vmap takes the torch.func path
    mapped = torch.func.vmap(lambda w: grad_fn(params, None, eps, x, y, w, plan)[0])(
        torch.tensor([0.1, 0.1], dtype=torch.float64)
    )
    for a, b in zip(tree_leaves(eager[0]), tree_leaves(mapped)):
        torch.testing.assert_close(b[0], a, rtol=1e-12, atol=1e-14)


def test_a_shared_sigma_is_computed_once_and_gives_the_same_gradients():
    from fblitz.distributions import gaussian_kl, reparameterize, shared_sigmas, sigma

    rho = randn(1, 5, dtype=torch.float64).requires_grad_(True)
    mu, eps = randn(2, 5, dtype=torch.float64), randn(3, 5, dtype=torch.float64)

    def loss():
        return (reparameterize(mu, rho, eps).square().sum() + gaussian_kl(mu, rho, 0.0, 0.1).sum()) * sigma(rho).sum()

    plain = torch.autograd.grad(loss(), rho)[0]
    with shared_sigmas():
        assert sigma(rho) is sigma(rho)  # one softplus per rho tensor
        shared = torch.autograd.grad(loss(), rho)[0]
    torch.testing.assert_close(shared, plain, rtol=1e-14, atol=0)
    assert sigma(rho) is not sigma(rho)  # no cache outside the context

"""The Boston example's context: baselines, the key-to-key spread of its metrics, and the printed summary."""

from __future__ import annotations

import torch

from fblitz import layers, metrics
from fblitz.random import Key
from fblitz.train import fit

SPREAD_METRICS = ("rmse", "nll", "coverage_90", "ci_acc")


def baselines(model, params, x_train, y_train, x_test, y_test, *, key: Key, settings: dict) -> dict:
    """Test RMSE (standardised) of three reference predictors trained on the same split.

    * ``training_mean``: the mean training target for every test row;
    * ``ridge``: scikit-learn's ``RidgeCV`` (penalty chosen by leave-one-out on
      the training rows);
    * ``deterministic_twin``: the same network, initialisation, optimiser,
      batches and epochs, trained without weight noise and without the KL
      term (``layers.freeze``: the posterior means are ordinary weights).
    """
    from sklearn.linear_model import RidgeCV

    ridge = RidgeCV(alphas=torch.logspace(-3, 3, 25).tolist()).fit(x_train.numpy(), y_train.numpy())
    ridge_prediction = torch.as_tensor(ridge.predict(x_test.numpy()), dtype=y_test.dtype).reshape(y_test.shape)
    twin = layers.freeze(model)
    twin_settings = {**settings, "complexity_cost_weight": 0.0, "n_samples": 1}
    trained = fit(twin, params, x_train, y_train, key=key, **twin_settings).params
    with torch.no_grad():
        twin_prediction = twin.apply(trained, x_test)[..., : y_test.shape[-1]]
    return {
        "training_mean": metrics.rmse(y_train.mean().expand_as(y_test), y_test),
        "ridge": metrics.rmse(ridge_prediction, y_test),
        "deterministic_twin": metrics.rmse(twin_prediction, y_test),
    }


def key_spread(run, params, key: Key, count: int) -> dict:
    """Min and max of the main metrics when ``run(params, eval_key)`` is repeated with ``count`` other keys."""
    if count < 1:
        return {}
    results = [run(params, key.fold_in(10_000 + i)) for i in range(count)]
    return {
        name: {"min": min(r[name] for r in results), "max": max(r[name] for r in results)} for name in SPREAD_METRICS
    }


def print_summary(scores: dict, args, *, train_rows: int, test_rows: int) -> None:
    """The example's final report as text."""
    model = "13-512-ReLU-1" if args.activation == "relu" else "13-512-1 (no activation, the 2020 article)"
    noise = "MSE (Gaussian noise sigma 0.707)" if args.likelihood == "mse" else "learned Gaussian noise"
    kl = "" if args.kl_scale == 1 else f", KL weight {args.kl_scale:g} / N"
    print(f"Boston housing, {train_rows} train / {test_rows} test rows, {args.epochs} epochs, {model}, {noise}{kl}")
    print(
        f"  RMSE                 {scores['rmse']:.3f} (standardised)  {scores['rmse_dollars_k']:.2f} ($1000s)"
        f"   predictive mean of {scores['eval_samples']} weight draws"
    )
    sigma = scores["noise_sigma"]
    print(f"  predictive NLL       {scores['nll']:.3f} (standardised, noise sigma {sigma:.3f} included)")
    coverages = " / ".join(f"{scores[f'coverage_{level}']:.3f}" for level in (50, 90, 95))
    print(f"  coverage 50/90/95%   {coverages}   (central intervals of the predictive, noise included)")
    print(
        f"  90% weights only     {scores['coverage_90_weights_only']:.3f}   (quantiles of the weight draws' outputs,"
        " no noise)"
    )
    print(
        f"  CI acc (+/-{args.std_multiplier:g} std)    {scores['ci_acc']:.3f}   upper {scores['ci_upper_acc']:.3f}"
        f"   lower {scores['ci_lower_acc']:.3f}   (the article's metric: weight draws only,"
        f" width {scores['mean_interval_width']:.2f})"
    )
    spread = scores["key_spread"]
    if spread:
        ranges = "   ".join(f"{name} {v['min']:.3f}-{v['max']:.3f}" for name, v in spread.items())
        print(f"  other eval keys      {ranges}   ({args.spread_keys} keys)")
    context = scores["baselines"]
    if context:
        print(
            f"  baselines (RMSE)     training mean {context['training_mean']:.3f}   ridge {context['ridge']:.3f}"
            f"   deterministic twin {context['deterministic_twin']:.3f}"
        )
    print(f"  training time        {scores['train_seconds']:.1f} s")

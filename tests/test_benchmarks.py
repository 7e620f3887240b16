"""Smoke tests of the benchmark harness (no timing assertions): records, references, peers, twins."""

import json
import sys

import pytest
import torch

from benchmarks import blitz_twins, impls, peers, predict_impls, reference, report, run, targets
from benchmarks.cases import NETS, Case, data
from fblitz.layers import sample_noise
from fblitz.objectives import negative_elbo
from fblitz.random import Key


def test_entry_point_writes_records(tmp_path):
    path = tmp_path / "records.json"
    argv = ["--quick", "--cases", "13-512-1,b16,S1", "--no-compile", "--iters", "2", "--warmup", "0"]
    run.main(argv + ["--json", str(path), "--clock", "cpu"])  # every implementation of one case, two timed rounds
    records = json.loads(path.read_text())["records"]
    assert {r["impl"] for r in records} >= {"fblitz-eager", "loop", "bmm", "compat"}
    fields = {"impl", "model", "batch", "samples", "estimator", "device", "clock", "threads", "ms_median", "peak_mb"}
    assert fields <= set(records[0]) and records[0]["device"] == "cpu"
    assert len(targets.checklist(records)) == 9
    assert "fblitz eager" in report.summary(records) and "compat / eager" in report.peer_ratios(records)


def test_bad_options_are_usage_errors(capsys):
    for argv in (["--device", "nonsense"], ["--impls", "fblitz,nope"], ["--clock", "gpu"]):
        with pytest.raises(SystemExit) as info:
            run.parse(argv)
        assert info.value.code == 2
    assert "nope" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["13-512-1", "lenet-8x8", "lstm-16"])
def test_reference_computes_fblitz_loss(name):
    net = NETS[name]
    model = net.build()
    params = model.init(Key(0))
    x, y = data(net, 4, 1)
    eps = sample_noise(model, 2, params, 3)
    expected = negative_elbo(model, params, eps, x, y, likelihood=net.likelihood, complexity_cost_weight=0.01).loss
    got = reference.loss(net.kind, net.classes, params, eps, x, y, 0.01)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_predict_runners_agree_on_the_mean():
    case = Case(NETS["13-512-1"], 32, 5, "predict")
    runners = (
        predict_impls.fblitz_predict, predict_impls.fblitz_one_call_predict, predict_impls.loop_predict,
        predict_impls.bmm_predict,
    )  # fmt: skip
    means = [build(case).run()[0] for build in runners]
    for mean in means[1:]:
        torch.testing.assert_close(mean, means[0], rtol=1e-4, atol=1e-5)


def _distinct_predictions(module, net, samples):
    x, y = data(net, 4, 1)
    with torch.random.fork_rng():
        predictions = module.sample_elbo_detailed_loss(x, y, blitz_twins.criterion(net), samples, 1e-3)[0]
    return peers.distinct_outputs(torch.as_tensor(predictions))


@pytest.mark.parametrize("kind", ["13-512-1", "lenet-8x8"])
def test_the_compat_and_blitz_twins_draw_s_distinct_samples(kind):
    libraries = ["compat"] + (["blitz"] if impls.blitz_available() else [])
    for library in libraries:
        module = blitz_twins.build(NETS[kind], 0, library)
        assert _distinct_predictions(module, NETS[kind], 5) == 5


@pytest.mark.skipif(not peers.available("bayesian-torch"), reason="bayesian-torch is not installed")
@pytest.mark.parametrize("kind", ["13-512-1", "lenet-8x8", "lstm-16"])
def test_bayesian_torch_step_draws_s_distinct_samples(kind):
    net = NETS[kind]
    module = peers.bayesian_torch_model(net, 0)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    step = peers.bayesian_torch_step(module, blitz_twins.criterion(net), 4, 1e-3, opt)
    x, y = data(net, 6, 1)
    before = {name: p.detach().clone() for name, p in module.named_parameters()}
    with torch.random.fork_rng():
        outputs = step(x, y)
    assert outputs.shape[0] == 4 and peers.distinct_outputs(outputs) == 4
    assert any(not torch.equal(p, before[name]) for name, p in module.named_parameters())  # Adam stepped


@pytest.mark.skipif(not peers.available("posteriors"), reason="posteriors is not installed")
@pytest.mark.parametrize("kind", ["13-512-1", "lenet-8x8"])
def test_posteriors_step_draws_s_distinct_samples(kind):
    net = NETS[kind]
    module = peers.deterministic(net, 0)
    transform, state = peers.posteriors_transform(net, module, 4, 1e-3, 1e-3)
    x, y = data(net, 6, 1)
    with torch.random.fork_rng():
        new_state, outputs = transform.update(state, (x, y))
    assert outputs.shape[0] == 4 and peers.distinct_outputs(outputs) == 4
    assert not torch.equal(new_state.params["0.weight"], state.params["0.weight"])  # Adam stepped


@pytest.mark.skipif(not (peers.available("posteriors") and peers.available("bayesian-torch")), reason="no peers")
def test_peer_runners_leave_the_global_rng_alone():
    case = Case(NETS["13-512-1"], 8, 3)
    for build in (impls.bayesian_torch_step, impls.posteriors_step, predict_impls.bayesian_torch_predict):
        runner = build(case if build is not predict_impls.bayesian_torch_predict else case._replace(task="predict"))
        with runner.context():
            runner.run()  # the conftest fixture checks the global RNG after the test


def test_the_compat_kl_measurement_runs(monkeypatch, capsys):
    from benchmarks import compat_kl

    argv = ["compat_kl", "--model", "13-512-1", "--batch", "4", "--samples", "1", "--rounds", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    compat_kl.main()
    out = capsys.readouterr().out
    assert "eager, closed-form KL" in out and "compat (BLiTZ's KL)" in out

"""Smoke test of the benchmark harness: one small case, two rounds, no timing assertions."""

import json

import pytest
import torch

from benchmarks import impls, reference, report, run
from benchmarks.cases import NETS, Case, data
from fblitz.layers import sample_noise
from fblitz.objectives import negative_elbo
from fblitz.random import Key


def test_entry_point_writes_records(tmp_path):
    path = tmp_path / "records.json"
    argv = ["--quick", "--cases", "13-512-1,b16,S1", "--no-compile", "--iters", "2", "--warmup", "0"]
    run.main(argv + ["--json", str(path)])  # every implementation of one case, two timed rounds
    records = json.loads(path.read_text())["records"]
    assert {r["impl"] for r in records} >= {"fblitz-eager", "loop", "bmm"}
    assert {"impl", "model", "batch", "samples", "estimator", "threads", "ms_median", "ms_min", "peak_mb"} <= set(
        records[0]
    )
    assert len(report.checklist(records)) == 5


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
    runners = (impls.fblitz_predict, impls.fblitz_one_call_predict, impls.loop_predict, impls.bmm_predict)
    means = [build(case).run()[0] for build in runners]
    for mean in means[1:]:
        torch.testing.assert_close(mean, means[0], rtol=1e-4, atol=1e-5)

"""The five-data-set UCI command: resumable runs, merged summaries, the table written into the pages."""

import json
import pathlib

import numpy as np
import pytest
import torch

from fblitz.errors import FblitzValueError
from fblitz.experiments import uci, uci_benchmark
from fblitz.experiments.uci_table import (
    CALIBRATION,
    END_MARKER,
    START_MARKER,
    markers,
    render_calibration,
    render_table,
    replace_between_markers,
    update_page,
)
from tests.helpers import randn

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = "--epochs 2 --eval-samples 8 --no-compile"


def entry(mean, stderr):
    return {"mean": mean, "stderr": stderr}


def fake_summary(n_splits=20):
    return {
        "n_rows": 308,
        "n_features": 6,
        "n_splits": n_splits,
        "rmse": entry(0.6512, 0.041),
        "log_likelihood": entry(-0.8349, 0.052),
        "coverage_50": entry(0.514, 0.01),
        "coverage_80": entry(0.796, 0.01),
        "coverage_90": entry(0.8921, 0.0123),
        "coverage_95": entry(0.947, 0.01),
        "per_split": [
            {"kl_weight": 1.0, "noise_factor": 0.5},
            {"kl_weight": 0.1, "noise_factor": 2.0},
            {"kl_weight": 1.0, "noise_factor": 0.25},
            {"kl_weight": 1.0, "noise_factor": 1.0},
        ],
    }


def test_the_table_sets_each_fblitz_row_under_the_published_ones():
    table = render_table({"yacht": fake_summary()}).splitlines()
    assert table[0].startswith("| data set | method | splits | test RMSE | test log-likelihood | 90% coverage")
    yacht = [i for i, line in enumerate(table) if line.startswith("| Yacht (308 × 6) |")][0]
    assert table[yacht] == "| Yacht (308 × 6) | MC dropout, tuned (Mukhoti et al. 2018) | 20 | 0.67 | −1.25 | – | – |"
    assert "| Deep ensembles (Lakshminarayanan et al. 2017) | 20 | – | −1.18 |" in table[yacht + 1]
    assert table[yacht + 2] == (
        "| | **fblitz BBB (runner defaults)** | 20 | 0.65 ± 0.04 | −0.83 ± 0.05 | 89.2 ± 1.2% | 51 / 80 / 95% |"
    )
    assert "| | fblitz BBB (runner defaults) | not run yet |" in "\n".join(table)  # the other four
    with pytest.raises(FblitzValueError, match="no published rows for"):
        render_table({"iris": fake_summary()})


def test_the_calibration_table_gives_every_level_and_flags_misses_over_three_points():
    yacht = fake_summary()
    yacht["coverage_50"] = entry(0.467, 0.044)  # 3.3 points under: flagged
    yacht["coverage_80"] = entry(0.77, 0.02)  # exactly 3 points under: within
    table = render_calibration({"yacht": yacht, "energy": fake_summary(15)}).splitlines()
    assert table[0] == (
        "| data set | splits | 50% | 80% | 90% | 95% | KL weight kept (splits) | noise factor, median (range) |"
    )
    assert table[2:] == [  # the data sets in the results table's order, only those run
        "| Energy | 15 | 51.4 ± 1.0 | 79.6 ± 1.0 | 89.2 ± 1.2 | 94.7 ± 1.0 | 1: 3, 0.1: 1 | 0.75 (0.25–2.00) |",
        "| Yacht | 20 | **46.7 ± 4.4** | 77.0 ± 2.0 | 89.2 ± 1.2 | 94.7 ± 1.0 | 1: 3, 0.1: 1 | 0.75 (0.25–2.00) |",
    ]
    odd = fake_summary()
    odd["per_split"] = odd["per_split"][:3]
    assert render_calibration({"yacht": odd}).endswith("| 1: 2, 0.1: 1 | 0.50 (0.25–2.00) |")
    with pytest.raises(FblitzValueError, match="no published rows for"):
        render_calibration({"iris": fake_summary()})


def test_a_page_gets_the_calibration_table_only_where_it_has_its_markers():
    start, end = markers(CALIBRATION)
    summaries = {"yacht": fake_summary()}
    results_only = f"{START_MARKER}\n{END_MARKER}\n"
    assert update_page(results_only, summaries) == f"{START_MARKER}\n{render_table(summaries)}\n{END_MARKER}\n"
    both = update_page(f"{results_only}text\n{start}\nold\n{end}\n", summaries)
    assert both.endswith(f"text\n{start}\n{render_calibration(summaries)}\n{end}\n")
    with pytest.raises(FblitzValueError, match="must hold <!-- uci-calibration:start --> once"):
        update_page(f"{results_only}{start}\n{start}\n{end}\n", summaries, "page.md")


def test_the_table_replaces_only_the_text_between_the_markers():
    page = f"intro\n{START_MARKER}\nold table\n{END_MARKER}\noutro\n"
    new = replace_between_markers(page, "| new |")
    assert new == f"intro\n{START_MARKER}\n| new |\n{END_MARKER}\noutro\n"
    assert replace_between_markers(new, "| new |") == new
    with pytest.raises(FblitzValueError, match="must hold"):
        replace_between_markers("no markers here", "| new |", "page.md")


def small_benchmark(root: pathlib.Path, name: str) -> None:
    directory = root / name
    directory.mkdir(parents=True)
    x = randn(0, 40, 2, dtype=torch.float64).numpy()
    y = x[:, :1] - x[:, 1:] + 0.1 * randn(1, 40, 1, dtype=torch.float64).numpy()
    np.savetxt(directory / "data.txt", np.hstack([x, y]), fmt="%.17g")
    (directory / "index_features.txt").write_text("0\n1\n")
    (directory / "index_target.txt").write_text("2\n")


def test_the_command_runs_resumes_and_writes_the_page(tmp_path, monkeypatch, capsys):
    small_benchmark(tmp_path / "data", "yacht")
    resets = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))
    page = tmp_path / "page.md"
    page.write_text(f"# results\n{START_MARKER}\n{END_MARKER}\n" + "\n".join(markers(CALIBRATION)) + "\n")
    argv = ["--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "results"), "--page", str(page)]
    argv += ["--datasets", "yacht", "--n-splits", "2", "--runner-args", QUICK]
    uci_benchmark.main(argv)
    progress = capsys.readouterr().err  # off a terminal: one line per split, then its result
    assert "[1/2] yacht split 0" in progress and "[2/2] yacht split 1" in progress
    assert "yacht split 1: {'rmse'" in progress and "split 1 (1 of 1): training" in progress  # the runner's own
    summary = json.loads((tmp_path / "results" / "yacht.json").read_text())
    assert summary["n_splits"] == 2 and summary["splits"] == [0, 1] and summary["runner_args"] == QUICK.split()
    assert len(summary["calibration"]["observed"]) == 19
    assert f"**fblitz BBB ({QUICK})** | 2 |" in page.read_text()
    assert "\n| Yacht | 2 | " in page.read_text()  # the calibration table too
    assert resets == [1]  # a fresh compile cache per data set
    # a second run finds both splits on disk and trains nothing; a third adds split 2 only
    calls = []
    real_main = uci.main
    monkeypatch.setattr(uci, "main", lambda args: calls.append(args) or real_main(args))
    uci_benchmark.main(argv)
    assert calls == []
    uci_benchmark.main([*argv[:-4], "--first-split", "2", "--n-splits", "1", "--runner-args", QUICK, "--quiet"])
    assert len(calls) == 1 and "2" == calls[0][calls[0].index("--first-split") + 1] and "--quiet" in calls[0]
    assert "[1/1]" not in capsys.readouterr().err
    merged = json.loads((tmp_path / "results" / "yacht.json").read_text())
    assert merged["n_splits"] == 3 and merged["per_split"][:2] == summary["per_split"]
    # other runner arguments are another run: nothing saved matches them
    with pytest.raises(FblitzValueError, match="--data-root .* has no concrete/ directory"):
        uci_benchmark.main([*argv[:-4], "--datasets", "concrete"])
    capsys.readouterr()


def test_verify_reruns_a_saved_split_and_fails_when_this_code_gives_other_scores(tmp_path, capsys):
    small_benchmark(tmp_path / "data", "yacht")
    argv = ["--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "results"), "--quiet"]
    argv += ["--datasets", "yacht", "--runner-args", QUICK]
    with pytest.raises(FblitzValueError, match=r"--verify-split 1: no saved split of yacht at .*split_01.json"):
        uci_benchmark.main([*argv, "--verify-split", "1"])
    page = tmp_path / "page.md"
    page.write_text(f"{START_MARKER}\n{END_MARKER}\n")
    uci_benchmark.main([*argv, "--n-splits", "2", "--page", str(page)])
    capsys.readouterr()
    assert uci_benchmark.main([*argv, "--verify-split", "1"]) == "yacht split 1: reproduced"
    assert capsys.readouterr().out == "yacht split 1: reproduced\n"
    uci_benchmark.main([*[a for a in argv if a != "--quiet"], "--verify-split", "0"])
    assert capsys.readouterr().err == "yacht split 0: running it again to compare\n"
    saved_path = tmp_path / "results" / "splits" / "yacht" / "split_01.json"
    saved = json.loads(saved_path.read_text())
    saved["per_split"][0]["rmse"] *= 1 + 1e-6  # as if an earlier version of the code had run it
    saved["per_split"][0]["train_seconds"] += 100.0  # timings are not results
    saved_path.write_text(json.dumps(saved))
    with pytest.raises(FblitzValueError, match=r"other scores than the saved splits of \['yacht'\]; delete"):
        uci_benchmark.main([*argv, "--verify-split", "1"])
    line = capsys.readouterr().out
    assert line.startswith("yacht split 1: differs: rmse ") and "train_seconds" not in line and ";" not in line
    with pytest.raises(FblitzValueError, match="run with other runner arguments or defaults"):
        uci_benchmark.main([*argv[:-1], "--epochs 3 --eval-samples 8 --no-compile", "--verify-split", "0"])


def test_workers_run_the_splits_in_processes_with_the_scores_of_one_process(tmp_path, capsys):
    small_benchmark(tmp_path / "data", "yacht")
    small_benchmark(tmp_path / "data", "energy")
    page = tmp_path / "page.md"
    page.write_text(f"{START_MARKER}\n{END_MARKER}\n")
    common = ["--data-root", str(tmp_path / "data"), "--page", str(page), "--datasets", "yacht,energy"]
    common += ["--n-splits", "2", "--runner-args", QUICK]
    uci_benchmark.main([*common, "--results", str(tmp_path / "one"), "--quiet"])
    capsys.readouterr()
    uci_benchmark.main([*common, "--results", str(tmp_path / "two"), "--workers", "2"])
    progress = capsys.readouterr().err
    assert "4 splits to run in 2 processes" in progress and "energy split 1: {'rmse'" in progress
    for name in ("yacht", "energy"):
        one = json.loads((tmp_path / "one" / f"{name}.json").read_text())
        two = json.loads((tmp_path / "two" / f"{name}.json").read_text())
        strip = lambda parts: [{k: v for k, v in p.items() if k != "train_seconds"} for p in parts]  # noqa: E731
        assert two["n_splits"] == 2 and strip(two["per_split"]) == strip(one["per_split"])
    # a split that fails in a worker stops the run with its error
    (tmp_path / "data" / "yacht" / "data.txt").write_text("1 2 3\n4 5\n")
    with pytest.raises(FblitzValueError, match="expected 3 cells"):
        uci_benchmark.main([*common, "--results", str(tmp_path / "three"), "--workers", "2", "--quiet"])
    with pytest.raises(FblitzValueError, match="has no concrete/ directory"):  # before any process starts
        uci_benchmark.main([*common[:4], "--datasets", "concrete", "--results", str(tmp_path), "--workers", "2"])


def test_differences_name_every_changed_or_missing_score():
    saved = {"rmse": 1.0, "log_likelihood": -2.0, "train_seconds": 5.0, "df": 3.0}
    assert uci_benchmark.differences(saved, dict(saved, train_seconds=9.0)) == []
    assert uci_benchmark.differences(saved, dict(saved, rmse=1.0 + 1e-12)) == []  # within rtol 1e-9
    now = {"rmse": 1.1, "log_likelihood": -2.0, "train_seconds": 5.0, "noise_factor": 0.5}
    assert uci_benchmark.differences(saved, now) == ["df 3.0 -> None", "noise_factor None -> 0.5", "rmse 1.0 -> 1.1"]


def test_the_pages_hold_the_table_of_the_saved_results():
    summaries = {}
    for name in uci_benchmark.DATASETS:
        path = ROOT / "benchmarks" / "uci" / f"{name}.json"
        if path.exists():
            summaries[name] = json.loads(path.read_text())
    for page in uci_benchmark.DEFAULT_PAGES:
        text = (ROOT / page).read_text()
        assert update_page(text, summaries, page) == text, f"{page}: rerun uci_benchmark --render-only"
    assert markers(CALIBRATION)[0] in (ROOT / "docs" / "guides" / "uci-benchmark.md").read_text()

"""The five-data-set UCI command: resumable runs, merged summaries, the table written into the pages."""

import json
import pathlib

import numpy as np
import pytest
import torch

from fblitz.errors import FblitzValueError
from fblitz.experiments import uci, uci_benchmark
from fblitz.experiments.uci_table import END_MARKER, START_MARKER, render_table, replace_between_markers
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
    page.write_text(f"# results\n{START_MARKER}\n{END_MARKER}\n")
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


def test_the_pages_hold_the_table_of_the_saved_results():
    summaries = {}
    for name in uci_benchmark.DATASETS:
        path = ROOT / "benchmarks" / "uci" / f"{name}.json"
        if path.exists():
            summaries[name] = json.loads(path.read_text())
    table = render_table(summaries)
    for page in uci_benchmark.DEFAULT_PAGES:
        text = (ROOT / page).read_text()
        assert replace_between_markers(text, table, page) == text, f"{page}: rerun uci_benchmark --render-only"

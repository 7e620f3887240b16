"""The tutorial notebooks run top to bottom, and their committed outputs are current.

The notebooks are stored with their outputs (``python notebooks/regenerate.py``
writes them). Here each one is executed again in a fresh kernel and its
outputs are compared with the stored ones (``notebooks/regenerate.py``'s
``comparable``: printed text number by number within a small tolerance,
figures by presence and size; progress bars and cells tagged
``volatile-output`` are not compared). :data:`CHECKS` adds a cell to a
notebook's run (in memory, not compared) asserting values that a wrong
implementation would get wrong. Skipped without nbclient.
"""

import importlib.util
import pathlib

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def regenerate_module():
    spec = importlib.util.spec_from_file_location("regenerate", ROOT / "notebooks" / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = regenerate_module()


def test_the_three_tutorials_are_there():
    assert [p.name for p in NOTEBOOKS] == [
        "01_regression_uncertainty.ipynb",
        "02_classification_calibration.ipynb",
        "03_vectorized_monte_carlo.ipynb",
    ]
    assert regenerate.notebook_paths() == NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_with_its_outputs(path):
    book = nbformat.read(path, as_version=4)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert all(cell.outputs for cell in code), "run python notebooks/regenerate.py and commit the notebooks"
    assert all(cell.execution_count == index for index, cell in enumerate(code, start=1)), "run top to bottom once"
    outputs = [out for cell in code for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    for out in outputs:
        if out.output_type == "stream":  # stored as a reader sees it: no progress-bar redraws
            assert "\r" not in out.text
    if "03_" not in path.name:  # the figures are stored as PNGs
        assert any("image/png" in out.get("data", {}) for out in outputs)


# Appended (in memory) to a notebook before it runs: values a wrong implementation would get wrong.
CHECKS = {
    "01_regression_uncertainty": """
# measured: the mean 0.047 from the noise-free curve on the data, the weight spread 13x wider
# outside it, the learned noise 0.072 (the data's 0.02), coverage 0.588 at 50% and 0.946 at 90%
assert float(gap[inside].square().mean().sqrt()) < 0.1
assert spread_out > 5 * spread_in
assert 0.02 < float(aleatoric.mean()) < 0.15
assert 0.5 < cover50 < 0.7 and 0.88 < cover90 < 0.99, (cover50, cover90)
torch.testing.assert_close(band.std.square(), band.epistemic_variance + band.aleatoric_variance)
""",
    "02_classification_calibration": """
parts = {name: metrics.uncertainty_decomposition(s) for name, s in (("test", samples), ("noise", noise_samples))}
accuracy, nll = metrics.accuracy(probs, y_test), metrics.classification_nll(probs, y_test)
# measured 0.958, 0.150, ECE 0.060, Brier 0.065; chance is 0.1, NLL log(10) = 2.3, Brier 0.9
assert accuracy > 0.93 and nll < 0.25, (accuracy, nll)
assert calibration.ece < 0.1 and metrics.brier_score(probs, y_test) < 0.1, calibration.ece
# noise images: 3.7 times the entropy, 5.6 times the epistemic part of the test digits'
assert float(parts["noise"].total.mean()) > 2 * float(parts["test"].total.mean())
assert float(parts["noise"].epistemic.mean()) > 2 * float(parts["test"].epistemic.mean())
torch.testing.assert_close(probs, sum(samples[i] for i in range(50)) / 50)
""",
    "03_vectorized_monte_carlo": """
import torch.nn.functional as F
from fblitz.distributions import sigma

eps = sample_eps(3, params, 4)
out = predict_with_eps(model, params, x, eps)
for i in range(4):  # the MLP by hand, on explicitly sampled weights
    h = x
    for name in ("0", "2", "4"):
        w, b = (params[name][t]["mu"] + sigma(params[name][t]["rho"]) * eps[name][t][i] for t in ("weight", "bias"))
        h = F.linear(h, w, b) if name == "4" else torch.relu(F.linear(h, w, b))
    torch.testing.assert_close(out[i], h)
assert not torch.equal(out[0], out[1])
""",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_its_committed_outputs_are_current(path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own path-migration notice otherwise
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's fblitz
    checks = [nbformat.v4.new_code_cell(CHECKS[path.stem])] if path.stem in CHECKS else []
    fresh = regenerate.execute(path, extra_cells=checks)
    errors = [
        out.get("evalue") for cell in fresh.cells for out in cell.get("outputs", []) if out.output_type == "error"
    ]
    assert not errors
    fresh.cells = fresh.cells[: len(fresh.cells) - len(checks)]  # the checks are not part of the notebook
    stored = nbformat.read(path, as_version=4)
    found = regenerate.differences(regenerate.comparable(stored), regenerate.comparable(fresh))
    assert not found, "stale outputs (run python notebooks/regenerate.py):\n" + "\n".join(found)
    outputs = [out for cell in fresh.cells if cell.cell_type == "code" for out in cell.outputs]
    assert any(out.output_type == "stream" and out.name == "stdout" for out in outputs)


def test_progress_redraws_collapse_to_what_a_terminal_shows():
    assert regenerate.collapse_redraws("epoch 1/3\repoch 2/3\repoch 3/3\ndone\n") == "epoch 3/3\ndone\n"
    assert regenerate.collapse_redraws("plain\ntext") == "plain\ntext"


def test_outputs_compare_numbers_within_the_tolerance_and_words_exactly():
    same = regenerate.differences
    stored = [[("stdout", "RMSE 0.071, coverage 0.946\n"), ("image/png", (500, 500))]]
    assert same(stored, [[("stdout", "RMSE 0.0712, coverage 0.9461\n"), ("image/png", (500, 500))]]) == []
    assert same(stored, [[("stdout", "RMSE 0.081, coverage 0.946\n"), ("image/png", (500, 500))]])
    assert same(stored, [[("stdout", "MSE 0.071, coverage 0.946\n"), ("image/png", (500, 500))]])
    assert same(stored, [[("stdout", "RMSE 0.071, coverage 0.946\n"), ("image/png", (600, 500))]])
    assert same(stored, [[("stdout", "RMSE 0.071, coverage 0.946\n")]])
    assert same(stored, [])


def test_volatile_cells_and_stderr_are_not_compared():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    def book(timing, progress):
        cells = [
            new_code_cell("t", metadata={"tags": ["volatile-output"]}, outputs=[new_output("stream", text=timing)]),
            new_code_cell("f", outputs=[new_output("stream", name="stderr", text=progress)]),
        ]
        return new_notebook(cells=cells)

    a, b = book("12.3 ms\n", "epoch 3/3 [00:01]"), book("45.6 ms\n", "epoch 3/3 [00:09]")
    assert regenerate.comparable(a) == regenerate.comparable(b) == [[], []]

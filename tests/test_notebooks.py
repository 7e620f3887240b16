"""The tutorial notebooks in notebooks/ run top to bottom (executed with nbclient; skipped without it)."""

import pathlib

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_three_tutorials_are_there():
    assert [p.name for p in NOTEBOOKS] == [
        "01_regression_uncertainty.ipynb",
        "02_classification_calibration.ipynb",
        "03_vectorized_monte_carlo.ipynb",
    ]


# Appended (in memory) to a notebook before it runs: values a wrong implementation would get wrong.
CHECKS = {
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
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own path-migration notice otherwise
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's fblitz
    book = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), "commit without outputs"
    if path.stem in CHECKS:
        book.cells.append(nbformat.v4.new_code_cell(CHECKS[path.stem]))
    client = nbclient.NotebookClient(book, timeout=120, kernel_name="python3", resources={"metadata": {"path": ROOT}})
    client.execute()
    outputs = [out for cell in book.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out.get("evalue") for out in outputs if out.output_type == "error"]
    assert any(out.output_type == "stream" for out in outputs)
    if "03_" not in path.name:  # the figures display as PNGs
        assert any("image/png" in out.get("data", {}) for out in outputs)

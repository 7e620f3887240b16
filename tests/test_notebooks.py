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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own path-migration notice otherwise
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's fblitz
    book = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in book.cells if cell.cell_type == "code"), "commit without outputs"
    client = nbclient.NotebookClient(book, timeout=120, kernel_name="python3", resources={"metadata": {"path": ROOT}})
    client.execute()
    outputs = [out for cell in book.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert any(out.output_type == "stream" for out in outputs)
    if "03_" not in path.name:  # the figures display as PNGs
        assert any("image/png" in out.get("data", {}) for out in outputs)

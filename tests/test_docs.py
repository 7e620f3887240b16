"""The documentation cannot drift from the code: every ```python block of docs/ runs.

Each page runs top to bottom in a fresh namespace (blocks of one page share it,
as a reader going through the page would). ``<!-- no-run -->`` is reserved for
BLiTZ's own code in the porting guide (BLiTZ is an optional dependency).
"""

import importlib
import importlib.util
import inspect
import pathlib
import re

import pytest
import torch

import fblitz
from tests.snippets import python_snippets, run_snippets

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


# torch.func.hessian (forward-over-reverse) reaches torch's own jit-scripted jvp decompositions,
# which warn in torch 2.13; the warning is torch's, not the docs'
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(DOCS)))
def test_page_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets that write files write them here
    if "fblitz.compat" in page.read_text():
        # compat mirrors BLiTZ: its modules draw their seeds from the global RNG, as nn.Module init does
        with torch.random.fork_rng():
            run_snippets(page)
    else:
        run_snippets(page)


def test_every_guide_has_running_code():
    for page in sorted((DOCS / "guides").glob("*.md")):
        assert any(snippet.run for snippet in python_snippets(page)), f"{page.name} has no running python block"


def test_no_run_is_only_for_blitz_snippets():
    # BLiTZ's own code is shown for comparison: it may be absent and it draws from the global RNG
    for page in PAGES:
        for snippet in python_snippets(page):
            if not snippet.run:
                assert re.search(r"^(from|import) blitz\b", snippet.code, re.M), (
                    f"{page.name}:{snippet.line}: a no-run block must be BLiTZ code"
                )


def api_pages_hook():
    spec = importlib.util.spec_from_file_location("api_pages", DOCS / "hooks" / "api_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_lists_every_public_module():
    listed = api_pages_hook().api_modules()  # the list the docs build reads
    assert len(listed) == len(set(listed)), "a module is listed twice in docs/api-modules.txt"
    public = {f"fblitz.{name}" for name in fblitz.__all__ if inspect.ismodule(getattr(fblitz, name))}
    missing = public - set(listed)
    assert not missing, f"add these modules to docs/api-modules.txt (one line each): {sorted(missing)}"
    for module in listed:
        importlib.import_module(module)


def test_api_reference_is_grouped_by_the_architecture():
    hook = api_pages_hook()
    sections = dict(hook.api_sections())
    for group in ("Layers", "Objectives and training", "Prediction and metrics", "Bridge and compat", "Distributed"):
        assert sections.get(group), f"docs/api-modules.txt has no [{group}] group"
    assert "fblitz.layers" in sections["Layers"] and "fblitz.train" in sections["Objectives and training"]
    assert (
        "fblitz.predictive" in sections["Prediction and metrics"] and "fblitz.compat" in sections["Bridge and compat"]
    )
    # the API index lists every page once, by group, in the navigation's order
    listing = hook.sections_markdown()
    assert [line.split("**")[1] for line in listing.splitlines()] == list(sections)
    assert all(listing.count(f"({module}.md)") == 1 for module in hook.api_modules())
    assert hook.MARKER in (DOCS / "api" / "index.md").read_text()


def test_the_home_page_shows_how_to_install_and_a_figure():
    text = (DOCS / "index.md").read_text()
    assert "## Install" in text and 'pip install "torch==2.13.0"' in text
    figures = re.findall(r"!\[[^\]]+\]\((img/[^)]+\.png)\)", text)
    assert figures and all((DOCS / figure).is_file() for figure in figures)
    assert "Building these docs" not in text  # contributor material lives in contributing.md
    assert "## Building these docs" in (DOCS / "contributing.md").read_text()


def test_the_top_level_api_is_functions_and_noun_namespaces():
    # `from fblitz import predict; predict(...)` works: the verbs of __all__ are functions, not modules
    for name in ("fit", "predict", "predictive_distribution", "make_predictor", "bayesify", "sample_elbo"):
        assert name in fblitz.__all__ and callable(getattr(fblitz, name)), name
        assert not inspect.ismodule(getattr(fblitz, name)), name
    modules = sorted(name for name in fblitz.__all__ if inspect.ismodule(getattr(fblitz, name)))
    assert modules == [
        "checkpoint", "datasets", "distributed", "layers", "likelihoods", "metrics", "models", "optim",
        "predictive", "priors",
    ]  # fmt: skip
    assert len(fblitz.__all__) == len(set(fblitz.__all__)) and all(hasattr(fblitz, name) for name in fblitz.__all__)
    from fblitz import predict

    assert predict is fblitz.prediction.predict

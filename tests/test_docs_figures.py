"""The numbers in docs/guides/priors.md come from docs/scripts/priors_figure.py."""

import importlib.util
import pathlib
import re

import pytest
import torch

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def load_script():
    spec = importlib.util.spec_from_file_location("priors_figure", DOCS / "scripts" / "priors_figure.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def guide_table() -> str:
    text = (DOCS / "guides" / "priors.md").read_text()
    return re.search(r"<!-- priors-table:start -->\n(.*?)\n<!-- priors-table:end -->", text, re.S).group(1)


@pytest.fixture
def one_thread():
    # the script runs with one thread (as `python docs/scripts/priors_figure.py` does), so the
    # reductions, and the printed digits, are the same as when the table was made
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_guide_table_rows_are_recomputed_by_the_script(one_thread):
    script = load_script()
    table = guide_table()
    assert table.splitlines()[:2] == script.HEADER.splitlines()
    assert len(table.splitlines()) == 2 + len(script.CONFIGS)
    # one configuration (about 2 s of CPU; the wide prior, whose numbers move most with any change
    # to training or prediction); `python docs/scripts/priors_figure.py` prints all four rows
    for row in script.rows(configs=(script.CONFIGS[-1],)):
        assert row in table.splitlines(), f"docs/guides/priors.md is stale: recomputed row {row}"


def test_figure_is_committed():
    assert (DOCS / "img" / "priors.png").stat().st_size > 10_000

"""Extract the ```python blocks of a Markdown file, so the docs' code is run by the tests.

A block preceded by the line ``<!-- no-run -->`` is returned with ``run=False``
(kept for BLiTZ's own code, shown for comparison: tests/test_docs.py allows it for
nothing else); every other ```python block is meant to run.
"""

from __future__ import annotations

import pathlib
import re
from typing import NamedTuple

NO_RUN = "<!-- no-run -->"
_FENCE = re.compile(r"^(?P<marker>[ \t]*<!-- no-run -->\n)?```python[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)


class Snippet(NamedTuple):
    code: str
    line: int  # 1-based line of the first code line in the file
    run: bool


def python_snippets(path: pathlib.Path) -> list[Snippet]:
    """Every ```python block of ``path`` in order, with its position and run flag."""
    text = path.read_text()
    return [
        Snippet(match["code"], text.count("\n", 0, match.start("code")) + 1, match["marker"] is None)
        for match in _FENCE.finditer(text)
    ]


def run_snippets(path: pathlib.Path, namespace: dict | None = None) -> dict:
    """Run the runnable blocks of ``path`` in order in one namespace; tracebacks name the file and line."""
    namespace = {"__name__": f"snippets:{path.name}"} if namespace is None else namespace
    for snippet in python_snippets(path):
        if snippet.run:
            # leading newlines make the compiled line numbers those of the Markdown file
            exec(compile("\n" * (snippet.line - 1) + snippet.code, str(path), "exec"), namespace)
    return namespace

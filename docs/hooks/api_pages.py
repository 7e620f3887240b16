"""MkDocs hook: one API reference page per module listed in docs/api-modules.txt.

Each page is generated at build time (nothing is written to docs/) and holds a
single mkdocstrings directive, ``::: module``; the pages are listed under the
"API reference" entry of the navigation, in the order of the list.
"""

from __future__ import annotations

import pathlib

LIST_FILE = pathlib.Path(__file__).resolve().parent.parent / "api-modules.txt"
SECTION = "API reference"


def api_modules() -> list[str]:
    """The module names in docs/api-modules.txt, in order."""
    lines = (line.split("#", 1)[0].strip() for line in LIST_FILE.read_text().splitlines())
    return [line for line in lines if line]


def page_path(module: str) -> str:
    return f"api/{module}.md"


def on_config(config):
    pages = [{module: page_path(module)} for module in api_modules()]
    nav = config["nav"]
    for index, entry in enumerate(nav):
        if isinstance(entry, dict) and SECTION in entry:
            nav[index] = {SECTION: [entry[SECTION], *pages] if entry[SECTION] else pages}
            return config
    nav.append({SECTION: pages})
    return config


def on_files(files, config):
    from mkdocs.structure.files import File  # imported here so the tests can use api_modules without mkdocs

    for module in api_modules():
        content = f"# `{module}`\n\n::: {module}\n"
        files.append(File.generated(config, page_path(module), content=content))
    return files

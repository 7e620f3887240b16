"""MkDocs hook: one API reference page per module listed in docs/api-modules.txt, grouped.

Each page is generated at build time (nothing is written to docs/) and holds a
single mkdocstrings directive, ``::: module``. The list's ``[Title]`` lines
group the modules; the groups become sub-sections of the "API reference"
entry of the navigation, in the order of the list, and replace the
``<!-- api-sections -->`` marker of ``api/index.md`` with the same grouped links.
"""

from __future__ import annotations

import pathlib

LIST_FILE = pathlib.Path(__file__).resolve().parent.parent / "api-modules.txt"
SECTION = "API reference"
MARKER = "<!-- api-sections -->"


def api_sections() -> list[tuple[str, list[str]]]:
    """``[(title, [module, ...]), ...]`` from docs/api-modules.txt, in order."""
    sections: list[tuple[str, list[str]]] = []
    for raw in LIST_FILE.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1].strip(), []))
        elif not sections:
            raise ValueError(f"{LIST_FILE}: module {line!r} before the first [Title] line")
        else:
            sections[-1][1].append(line)
    return sections


def api_modules() -> list[str]:
    """Every module of docs/api-modules.txt, in order."""
    return [module for _, modules in api_sections() for module in modules]


def page_path(module: str) -> str:
    return f"api/{module}.md"


def on_config(config):
    groups = [{title: [{module: page_path(module)} for module in modules]} for title, modules in api_sections()]
    nav = config["nav"]
    for index, entry in enumerate(nav):
        if isinstance(entry, dict) and SECTION in entry:
            nav[index] = {SECTION: [entry[SECTION], *groups] if entry[SECTION] else groups}
            return config
    nav.append({SECTION: groups})
    return config


def on_files(files, config):
    from mkdocs.structure.files import File  # imported here so the tests can use api_modules without mkdocs

    for module in api_modules():
        content = f"# `{module}`\n\n::: {module}\n"
        files.append(File.generated(config, page_path(module), content=content))
    return files


def sections_markdown() -> str:
    """The grouped list of API pages, as Markdown links relative to api/index.md."""
    lines = []
    for title, modules in api_sections():
        links = ", ".join(f"[`{module}`]({module}.md)" for module in modules)
        lines.append(f"- **{title}**: {links}")
    return "\n".join(lines)


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "api/index.md":
        return markdown.replace(MARKER, sections_markdown())
    return markdown

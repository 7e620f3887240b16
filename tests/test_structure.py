"""The package's structure rules (DESIGN.md, issue 22): short functions, private names kept private.

* no function or method in fblitz/ is longer than 70 lines;
* a private name (``from m import _x``) is imported only from a module of the
  importer's own package, and a private module (``fblitz._checks``,
  ``fblitz.compat._module``) only from inside the package that holds it.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fblitz"
MAX_LINES = 70


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text())


def _package_of(path: pathlib.Path) -> str:
    return ".".join(path.parent.relative_to(ROOT).parts)


def _is_package(dotted: str) -> bool:
    return (ROOT.joinpath(*dotted.split(".")) / "__init__.py").exists()


def _inside(package: str, holder: str) -> bool:
    return package == holder or package.startswith(holder + ".")


def test_no_function_is_longer_than_70_lines():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert not long, "split these functions:\n" + "\n".join(long)


def test_private_names_are_imported_only_inside_their_package():
    found = []
    for path, tree in _modules():
        own = _package_of(path)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                continue
            if node.module.split(".")[0] != "fblitz":  # only fblitz's own names and modules
                continue
            parts = node.module.split(".")
            private_part = next((i for i, part in enumerate(parts) if part.startswith("_")), None)
            if private_part is not None and not _inside(own, ".".join(parts[:private_part])):
                found.append(f"{path.relative_to(ROOT)}: from {node.module} import ...")
            holder = node.module if _is_package(node.module) else node.module.rsplit(".", 1)[0]
            for alias in node.names:
                if not alias.name.startswith("_") or alias.name.startswith("__"):
                    continue
                submodule = f"{node.module}.{alias.name}"
                if (ROOT.joinpath(*submodule.split(".")).with_suffix(".py")).exists() or _is_package(submodule):
                    allowed = _inside(own, node.module)  # a private module of a package: from inside it
                else:
                    allowed = own == holder  # a private name of a module: from its own package
                if not allowed:
                    found.append(f"{path.relative_to(ROOT)}: from {node.module} import {alias.name}")
    assert not found, "private names imported across packages:\n" + "\n".join(found)

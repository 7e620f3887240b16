"""Run the tutorial notebooks and store their outputs, or check that the stored outputs are current.

    python notebooks/regenerate.py            # execute every notebook, write the outputs into it
    python notebooks/regenerate.py --check    # execute, compare with the stored outputs, exit 1 on a difference
    python notebooks/regenerate.py 01 03      # only the notebooks whose names start so

The notebooks are committed with their outputs, so a reader sees the numbers
and figures without running anything. Each one fixes its seeds and uses one
thread, so its outputs are reproducible; what cannot be (the progress bar on
stderr, timings in cells tagged ``volatile-output``) is kept but not compared.
A stored progress bar is kept as a reader sees it: its last state, not every
redraw. :func:`comparable` is what ``--check`` and ``tests/test_notebooks.py``
compare: the text of every other output, number by number within
:data:`REL_TOL`/:data:`ABS_TOL` (floating-point results may differ in their
last digits on another CPU), and each figure's presence and pixel size.
"""

from __future__ import annotations

import argparse
import base64
import math
import os
import pathlib
import re
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
VOLATILE = "volatile-output"  # cell tag: outputs depend on the machine (timings)
CELL_TIMEOUT = 300  # seconds
REL_TOL, ABS_TOL = 0.01, 0.002
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def notebook_paths(names: list[str] | None = None) -> list[pathlib.Path]:
    """The tutorial notebooks (all, or those whose file names start with one of ``names``), in order."""
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.name.startswith(name) for name in names)]
    return paths


def collapse_redraws(text: str) -> str:
    """Each line as a terminal shows it: the text after its last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def normalise(book) -> None:
    """In place: writes to a stream merged, progress redraws collapsed, blank writes and timestamps dropped."""
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        merged = []
        for output in cell.outputs:
            previous = merged[-1] if merged else None
            if output.output_type == "stream" and previous is not None and previous.get("name") == output.name:
                previous.text += output.text
            else:
                merged.append(output)
        for output in merged:
            if output.output_type == "stream":
                output.text = collapse_redraws(output.text)
        # a lone newline (a progress bar closing after the cell printed) shows nothing
        cell.outputs = [out for out in merged if out.output_type != "stream" or out.text.strip()]


def execute(path: pathlib.Path, extra_cells=()):
    """The notebook at ``path`` executed top to bottom in a fresh kernel (this checkout's fblitz), normalised.

    ``extra_cells`` are appended before it runs (the tests' checks); they stay in the result.
    """
    import nbclient
    import nbformat

    book = nbformat.read(path, as_version=4)
    book.cells.extend(extra_cells)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's path-migration notice otherwise
    client = nbclient.NotebookClient(
        book, timeout=CELL_TIMEOUT, kernel_name="python3", record_timing=False, resources={"metadata": {"path": ROOT}}
    )
    client.execute()
    normalise(book)
    return book


def png_size(data: str) -> tuple[int, int]:
    """(width, height) of a base64 PNG."""
    raw = base64.b64decode(data)
    return struct.unpack(">II", raw[16:24])


def comparable(book) -> list[list[tuple]]:
    """Per code cell, the outputs that must match: text outputs and figure sizes (see the module docstring)."""
    cells = []
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        if VOLATILE not in cell.metadata.get("tags", []):
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stdout":
                    kept.append(("stdout", output.text))
                elif output.output_type in ("execute_result", "display_data"):
                    data = output.get("data", {})
                    if "image/png" in data:
                        kept.append(("image/png", png_size(data["image/png"])))
                    elif "text/plain" in data:
                        kept.append(("text/plain", data["text/plain"]))
                elif output.output_type == "error":
                    kept.append(("error", output.ename, output.evalue))
        cells.append(kept)
    return cells


def _same_text(a: str, b: str) -> bool:
    """Equal words, and numbers equal within the tolerances."""
    if NUMBER.sub("#", a) != NUMBER.sub("#", b):
        return False
    return all(
        math.isclose(float(x), float(y), rel_tol=REL_TOL, abs_tol=ABS_TOL)
        for x, y in zip(NUMBER.findall(a), NUMBER.findall(b))
    )


def differences(stored, fresh) -> list[str]:
    """What differs between two :func:`comparable` lists (empty if they agree)."""
    found = []
    if len(stored) != len(fresh):
        return [f"{len(stored)} code cells stored, {len(fresh)} now"]
    for index, (old, new) in enumerate(zip(stored, fresh)):
        if len(old) != len(new):
            found.append(f"code cell {index}: {len(old)} outputs stored, {len(new)} now")
            continue
        for a, b in zip(old, new):
            text = a[0] in ("stdout", "text/plain") and b[0] == a[0]
            if (text and not _same_text(a[1], b[1])) or (not text and a != b):
                found.append(f"code cell {index}: stored {a!r}, now {b!r}")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebooks whose file names start so (default: all)")
    parser.add_argument("--check", action="store_true", help="compare with the stored outputs instead of writing")
    args = parser.parse_args(argv)
    import nbformat

    paths = notebook_paths(args.names)
    if not paths:
        parser.error(f"no notebook in {NOTEBOOKS} starts with {' or '.join(args.names)}")
    failed = False
    for path in paths:
        print(f"running {path.name}", file=sys.stderr, flush=True)
        book = execute(path)
        if args.check:
            found = differences(comparable(nbformat.read(path, as_version=4)), comparable(book))
            for line in found:
                print(f"{path.name}: {line}")
            failed = failed or bool(found)
        else:
            nbformat.write(book, path)
            print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    if failed:
        print("outputs are stale: run python notebooks/regenerate.py and commit the notebooks")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

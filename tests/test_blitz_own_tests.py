"""BLiTZ 0.2.8's own unit tests, run against fblitz.compat with only their imports changed.

The BLiTZ wheel ships its tests (``blitz/*/tests/*_test.py``, unittest
classes). Each file is copied with ``blitz.`` imports pointed at
``fblitz.compat.`` and the two torchvision imports at
tests/torchvision_stand_in.py (no torchvision or network here); every other
line is kept byte for byte (checked). The suite runs in a subprocess: BLiTZ's
tests draw from the global torch RNG, which this suite's own tests must not
touch.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAND_IN = "tests.torchvision_stand_in"
IMPORTS = [
    (re.compile(r"^(\s*)from blitz\.(\S+) import (.+)$"), r"\1from fblitz.compat.\2 import \3"),
    (re.compile(r"^(\s*)import torchvision\.(datasets|transforms) as (\w+)$"), rf"\1from {STAND_IN} import \2 as \3"),
]


def blitz_test_files() -> list[Path]:
    spec = importlib.util.find_spec("blitz")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("BLiTZ is not installed (pip install --no-deps blitz-bayesian-pytorch==0.2.8)")
    package = Path(next(iter(spec.submodule_search_locations)))
    return sorted(package.glob("*/tests/*_test.py"))


def port(source: str) -> str:
    """``source`` with its BLiTZ and torchvision imports changed, every other line as it was."""
    lines = []
    for line in source.splitlines(keepends=True):
        body, end = line.rstrip("\r\n"), line[len(line.rstrip("\r\n")) :]
        for pattern, replacement in IMPORTS:
            body = pattern.sub(replacement, body)
        lines.append(body + end)
    return "".join(lines)


def test_the_port_changes_import_lines_only():
    for path in blitz_test_files():
        source = path.read_text()
        ported = port(source)
        changed = [(a, b) for a, b in zip(source.splitlines(), ported.splitlines()) if a != b]
        assert all(a.lstrip().startswith(("from blitz.", "import torchvision")) for a, _ in changed), path
        assert "blitz." not in ported.replace("fblitz.compat.", ""), path
        assert "import torchvision" not in ported, path


def test_blitz_own_test_suite_passes_on_fblitz_compat(tmp_path):
    files = blitz_test_files()
    expected = sum(len(re.findall(r"^\s+def test\w*\(self", path.read_text(), re.M)) for path in files)
    for path in files:
        (tmp_path / f"{path.parent.parent.name}_{path.name}").write_text(port(path.read_text()))
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "--rootdir", str(tmp_path),
         "-W", "ignore::DeprecationWarning", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert summary.startswith(f"{expected} passed"), summary
    assert expected == 78  # BLiTZ 0.2.8 ships 78 tests in 10 files

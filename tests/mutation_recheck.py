"""Re-run mutmut's mutants against a few targeted test files, in one process.

``mutmut run`` runs each mutant against every test of the fast selection that
reaches the mutated function; for functions that every test reaches
(``sigma``, the prior's constructor) a surviving mutant costs the whole
selection, minutes each on a loaded 2-core machine. After a ``mutmut run``
has built ``mutants/`` (and recorded its results there), this script re-runs
chosen mutants against the test files that target their function, stopping
at the first failure: the same trampolines (``MUTANT_UNDER_TEST``), a
different, much smaller test selection. It reports, it does not write
mutmut's results.

Usage, from the repository root (tests/README.md lists the runs behind the score)::

    python tests/mutation_recheck.py [--pending | --survived] GLOB... -- TEST_FILE... [PYTEST_ARGS]

``--pending`` takes only the mutants mutmut has not run, ``--survived`` only
those that survived it. The current ``tests/`` is copied into ``mutants/``
first, so new tests count.
"""

from __future__ import annotations

import fnmatch
import json
import os
import pathlib
import shutil
import sys

SURVIVED = 0  # mutmut's exit code of a mutant whose tests all passed


def recorded_results(root: pathlib.Path) -> dict:
    """Mutant name -> mutmut's recorded exit code (None: not run yet)."""
    results = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        results.update(json.loads(meta.read_text())["exit_code_by_key"])
    return results


def main(argv: list[str]) -> int:
    which = None
    if argv and argv[0] in ("--pending", "--survived"):
        which, argv = argv[0], argv[1:]
    split = argv.index("--")
    globs, pytest_args = argv[:split], argv[split + 1 :]
    root = pathlib.Path.cwd()
    recorded = recorded_results(root)
    wanted = {None: lambda code: True, "--pending": lambda code: code is None}
    wanted["--survived"] = lambda code: code == SURVIVED
    names = [
        name for name, code in recorded.items() if any(fnmatch.fnmatch(name, g) for g in globs) and wanted[which](code)
    ]
    shutil.copytree(root / "tests", root / "mutants" / "tests", dirs_exist_ok=True)
    os.chdir(root / "mutants")
    sys.path[:] = [str(root / "mutants")] + [p for p in sys.path if pathlib.Path(p or ".").resolve() != root]

    import pytest

    arguments = ["-x", "-q", "-p", "no:cacheprovider", "--no-header", "--tb=no", *pytest_args]
    os.environ["MUTANT_UNDER_TEST"] = ""
    if pytest.main(arguments) != 0:
        print("the tests fail without a mutant: fix them first")
        return 1
    survivors = []
    for name in names:
        os.environ["MUTANT_UNDER_TEST"] = name
        code = pytest.main(arguments)
        status = "survived" if code == 0 else "killed"
        print(f"MUTANT {status} {name}", flush=True)
        if code == 0:
            survivors.append(name)
    print(f"SUMMARY {len(names) - len(survivors)} killed, {len(survivors)} survived of {len(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

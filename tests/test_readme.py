"""The README's Python examples run, and its quickstart commands match CI."""

import pathlib
import re

from tests.snippets import python_snippets, run_snippets

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_examples_run(capsys):
    snippets = python_snippets(README)
    assert snippets, "README.md has no python example"
    assert all(snippet.run for snippet in snippets), "every README example must run"
    run_snippets(README, {})
    assert "{'weight': {'mu': (64, 13)" in capsys.readouterr().out


def test_quickstart_has_exactly_two_commands_pinning_torch():
    text = README.read_text()
    for name in ("main", "test"):
        block = re.search(rf"<!-- quickstart:{name} -->\n```bash\n(.*?)```", text, flags=re.S)
        assert block, name
        command = block.group(1).strip()
        assert "\n" not in command and 'pip install "torch==2.13.0"' in command


def test_docs_command_builds_the_site_strictly_in_the_test_venv():
    block = re.search(r"<!-- quickstart:docs -->\n```bash\n(.*?)```", README.read_text(), flags=re.S)
    assert block, "README.md has no quickstart:docs command (.ci/run reads it)"
    command = block.group(1).strip()
    assert "\n" not in command and '.venv/bin/pip install -e ".[docs]"' in command
    assert command.endswith(".venv/bin/mkdocs build --strict")

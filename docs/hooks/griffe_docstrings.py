"""griffe extension: adapt two habits of fblitz's docstrings before mkdocstrings parses them.

* Sphinx roles (:func:`map_gaussian`, :class:`~fblitz.errors.FblitzValueError`):
  Markdown has no such syntax and would print the role name, so each becomes
  inline code with the name as written (a leading ``~`` keeps only the last
  part, as in Sphinx).
* The singular ``Example:`` section heading: griffe only knows ``Examples:``,
  and under an unknown heading the ``>>>`` lines would render as nested quotes.
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):`(~?)([^`]+)`")
EXAMPLE_HEADING = re.compile(r"^([ \t]*)Example:[ \t]*$", re.M)


def _as_code(match: re.Match) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


class FblitzDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            text = ROLE.sub(_as_code, obj.docstring.value)
            obj.docstring.value = EXAMPLE_HEADING.sub(r"\1Examples:", text)

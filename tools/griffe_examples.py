"""A griffe extension of the documentation site (``mkdocs.yml``: the python handler's
``extensions``), for two reStructuredText habits of ebmlab's docstrings:

* doctests titled ``Example:``, which griffe's Google parser reads as a plain
  admonition; renamed to ``Examples:``, the ``>>>`` lines render as code blocks;
* Sphinx roles (``:class:`~ebmlab.samplers.MALA```), which Markdown would show
  verbatim; they become code spans (``MALA``).
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_EXAMPLE = re.compile(r"^Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|obj|exc|const):`(~?)([^`]+)`")


def _role(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


class ExampleSections(Extension):
    """Read every ``Example:`` section as an ``Examples:`` section, Sphinx roles as code."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        """Rename the section in the docstring of each loaded object."""
        if obj.docstring is not None:
            text = _EXAMPLE.sub("Examples:", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(_role, text)

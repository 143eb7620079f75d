"""A griffe extension of the documentation site (``mkdocs.yml``: the python handler's
``extensions``): ebmlab's docstrings title their doctests ``Example:``, which griffe's
Google parser reads as a plain admonition; renamed to ``Examples:``, the ``>>>`` lines
render as code blocks."""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_EXAMPLE = re.compile(r"^Example:[ \t]*$", re.MULTILINE)


class ExampleSections(Extension):
    """Read every ``Example:`` section as an ``Examples:`` section."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        """Rename the section in the docstring of each loaded object."""
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub("Examples:", obj.docstring.value)

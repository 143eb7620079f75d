"""The Python examples of the user-guide pages run, as written (each page's blocks in order,
in one namespace), so that the guide cannot drift from the library."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).parents[1] / "docs"
PAGES = ["lattice.md", "boltzmann.md", "hopfield.md", "logz.md", "data-files.md"]


@pytest.mark.parametrize("page", PAGES)
def test_guide_page_examples_run(page, capsys):
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"{page} has no Python example"
    namespace: dict = {"__name__": f"docs_{page}"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{page} (Python block {i + 1})", "exec"), namespace)

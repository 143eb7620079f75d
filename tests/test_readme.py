"""The README's Python example runs (with fewer steps)."""

from __future__ import annotations

import re
from pathlib import Path


def test_readme_example_runs():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 14
    code = code.replace("steps=5000", "steps=5").replace("n_steps=500", "n_steps=5")
    code = code.replace("50_000", "2_000")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert tuple(namespace["x"].shape) == (1000, 2)

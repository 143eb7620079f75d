"""The tutorials (``tutorials/NN_topic.py``, rendered by the docs site) still match the API.

Cheap by default, so that ``make test`` catches API drift without running the
gallery: every tutorial must compile, follow the gallery format (a module
docstring opening with a Markdown ``# Title``, cells separated by ``# %%``),
and import only names that exist; the fastest tutorials (``FAST``) run end to
end in a subprocess (a few seconds each).

Set ``EBMLAB_TUTORIALS=all`` to run every tutorial end to end instead (about
five minutes on 2 CPU cores: the budget of the docs build, which executes them
too).
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "tutorials"
SCRIPTS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
FAST = ["02_maximum_likelihood_with_a_tractable_normalizer.py"]
RUN = [s.name for s in SCRIPTS] if os.environ.get("EBMLAB_TUTORIALS") == "all" else FAST


def test_tutorials_exist() -> None:
    assert len(SCRIPTS) >= 9, [s.name for s in SCRIPTS]
    assert (TUTORIALS / "README.md").read_text().startswith("# Tutorials\n")
    for name in FAST:
        assert (TUTORIALS / name).exists(), name


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_tutorial_format(script: Path) -> None:
    """Gallery format: numbered name, a docstring titled in Markdown, cells."""
    source = script.read_text()
    tree = ast.parse(source, filename=str(script))
    compile(tree, str(script), "exec")
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.py", script.name), script.name
    docstring = ast.get_docstring(tree)
    assert docstring is not None, f"{script.name} has no module docstring"
    assert docstring.splitlines()[0].startswith("# "), f"{script.name}: first line not '# Title'"
    assert "\n# %%\n" in source, f"{script.name}: no '# %%' cell separator"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_tutorial_imports_exist(script: Path) -> None:
    """Every ``from ebmlab... import name`` of a tutorial names something that exists."""
    tree = ast.parse(script.read_text())
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ebmlab":
            module = importlib.import_module(str(node.module))
            missing += [
                f"{node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)
            ]
    assert not missing, f"{script.name} imports names that do not exist: {missing}"


@pytest.mark.parametrize("name", RUN)
def test_tutorial_runs(name: str, tmp_path: Path) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(TUTORIALS / name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert not list(tmp_path.iterdir()), "a tutorial must not write into its working directory"

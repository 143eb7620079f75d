"""The declared layer order of ``src/ebmlab``: imports only point down, no cycles.

An AST walk over every module (imports inside functions and ``TYPE_CHECKING``
blocks count too) checks two rules:

1. A module of layer ``k`` imports only from its own package and from layers
   below ``k``; packages in the same layer are siblings and import nothing of
   each other. The root ``ebmlab/__init__.py`` sits above everything.
2. No two modules import each other, directly or through others.

docs/architecture.md explains the layers. Further tests break a copy of the
tree on purpose and check that both rules catch it, and check that every
package docstring names the modules the package holds.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ebmlab"

#: Top layer first. A name is a subpackage or a top-level module of ``ebmlab``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__main__",),
    ("cli",),
    ("_info",),  # ebmlab info / show_versions: reads versions, imports only _version
    ("models",),  # deprecated aliases of the old paths; nothing may import them
    ("runs",),
    ("estimators",),
    # model families, objectives; sample_quality trains its feature network by train.fit
    ("boltzmann", "conditional", "lattice", "objectives", "sample_quality"),
    ("config", "data", "evaluation", "plotting", "train"),
    ("partition",),
    ("diagnostics", "samplers"),
    ("energies",),
    ("_types", "_version", "errors"),
)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """Absolute names of the package's modules that ``name`` imports, with line numbers."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    top = name.split(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == top:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != top:
                continue
            for alias in node.names:  # `from . import rbm` imports the submodule
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno


def _unit(module: str) -> str:
    """The layer unit of a module: its subpackage or top-level module ('' for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(root: Path, layers: Sequence[Sequence[str]] = LAYERS) -> list[str]:
    """Imports that break the layer order, as ``module:line imports target``."""
    rank = {unit: k for k, group in enumerate(layers) for unit in group}
    modules = _modules(root)
    problems = []
    for name, path in modules.items():
        src = _unit(name)
        if src not in rank and src != "":
            problems.append(f"{name}: not in the declared layers")
            continue
        for target, line in _imports(name, path, set(modules)):
            dst = _unit(target)
            if src == "" or dst == src:
                continue  # the root imports everything; a package imports itself
            if dst not in rank:
                problems.append(f"{name}:{line} imports {target} (the root or an undeclared unit)")
            elif rank[dst] <= rank[src]:
                how = "a sibling" if rank[dst] == rank[src] else "an upper layer"
                problems.append(f"{name}:{line} imports {target}, {how}")
    return list(dict.fromkeys(problems))  # one entry per import, however many names


def import_cycles(root: Path) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected components > 1)."""
    modules = _modules(root)
    graph = {n: {t for t, _ in _imports(n, p, set(modules)) if t in modules and t != n}
             for n, p in modules.items()}  # fmt: skip
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_every_unit_is_declared_once() -> None:
    units = [u for group in LAYERS for u in group]
    assert len(units) == len(set(units))
    found = {_unit(n) for n in _modules(SRC)} - {""}
    assert found == set(units), f"declare these in LAYERS: {sorted(found - set(units))}"


def test_imports_only_point_down() -> None:
    assert layer_violations(SRC) == []


def test_no_import_cycles() -> None:
    assert import_cycles(SRC) == []


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of ``src/ebmlab`` to break."""
    root = tmp_path / "ebmlab"
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("energies/base.py", "from ..samplers import run", "energies.base:{n} imports "
         "ebmlab.samplers, an upper layer"),
        ("samplers/mala.py", "from ebmlab.runs import load_run", "samplers.mala:{n} imports "
         "ebmlab.runs, an upper layer"),
        ("lattice/ising.py", "from ..boltzmann import rbm", "lattice.ising:{n} imports "
         "ebmlab.boltzmann.rbm, a sibling"),
        ("partition/ais.py", "    from ..objectives import cd", "partition.ais:{n} imports "
         "ebmlab.objectives.cd, an upper layer"),
        ("train/loop.py", "from .. import __version__", "train.loop:{n} imports "
         "ebmlab (the root or an undeclared unit)"),
    ],
)  # fmt: skip
def test_an_upward_import_is_caught(tree: Path, module: str, line: str, expected: str) -> None:
    path = tree / module
    text = path.read_text()
    added = f"def _added() -> None:\n{line}\n" if line.startswith("    ") else line  # lazy too
    path.write_text(f"{text}\n{added}\n")
    n = path.read_text().splitlines().index(line) + 1
    assert layer_violations(tree) == [f"ebmlab.{expected.format(n=n)}"]


def test_a_mutual_import_is_caught(tree: Path) -> None:
    rbm = tree / "boltzmann" / "rbm.py"
    rbm.write_text(rbm.read_text() + "\nfrom . import cd\n")  # cd already imports rbm's helpers
    cd = tree / "boltzmann" / "cd.py"
    cd.write_text(cd.read_text() + "\nfrom .rbm import RBM\n")
    assert layer_violations(tree) == []  # the layers allow it (one package) ...
    assert ["ebmlab.boltzmann.cd", "ebmlab.boltzmann.rbm"] in import_cycles(tree)  # not this


def test_package_docstrings_name_what_they_hold() -> None:
    """Every package's docstring names each of its public modules and subpackages."""
    gaps = {}
    for init in sorted(SRC.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        names = [p.stem for p in init.parent.glob("*.py")] + [
            p.name for p in init.parent.iterdir() if (p / "__init__.py").is_file()
        ]
        missing = [
            n
            for n in names
            if not n.startswith("_") and f"{n}.py" not in doc and f".{n}" not in doc
        ]
        if missing:
            gaps[_module_name(init, SRC)] = missing
    assert gaps == {}

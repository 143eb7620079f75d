"""Every model trains through ``ebmlab.train.fit``: no optimizer is built outside ``train/``.

An AST walk of ``src/ebmlab`` finds each use of ``torch.optim`` (an attribute
chain ``torch.optim.X`` or ``optim.X``, or an import from it); only
``train/`` may have them (plus any exception listed below with its reason).
"""

from __future__ import annotations

import ast
from pathlib import Path

import ebmlab

SRC = Path(ebmlab.__file__).parent

#: Modules that keep an optimizer of their own, and why they cannot use train.fit (none now:
#: full-batch L-BFGS runs in train.fit too, ``TrainSettings(optimizer="lbfgs")``).
EXCEPTIONS: dict[str, str] = {}


def _optimizer_uses(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = node.value
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
            if name == "optim":
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {alias.name for alias in node.names}
            if module.startswith("torch.optim") or (module == "torch" and "optim" in names):
                lines.append(node.lineno)
    return lines


def test_no_optimizer_outside_the_training_loop():
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("train/"):
            continue
        lines = _optimizer_uses(path)
        if lines:
            found[rel] = lines
    unexpected = {k: v for k, v in found.items() if k not in EXCEPTIONS}
    assert not unexpected, f"optimizers outside train/ (use ebmlab.train.fit): {unexpected}"
    stale = [k for k in EXCEPTIONS if k not in found]
    assert not stale, f"exceptions that no longer build an optimizer: {stale}"


def test_the_check_catches_an_optimizer(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch\nfrom torch import optim\nopt = torch.optim.Adam([])\nsgd = optim.SGD([])\n"
    )
    assert sorted(_optimizer_uses(bad)) == [2, 3, 4]


def test_epoch_batches_visit_every_row_once_per_pass():
    import torch

    from ebmlab.energies import MLPEnergy
    from ebmlab.train import TrainSettings, fit

    seen: list[torch.Tensor] = []

    def objective(energy, batch, state, *, generator=None):
        x, y = batch
        seen.append(y.clone())
        e = energy(x)
        return e.mean(), None, state

    data, labels = torch.randn(10, 2), torch.arange(10)
    settings = TrainSettings(steps=8, batch_size=4, warmup_steps=0, batches="epochs", log_every=1)
    fit(MLPEnergy(2, hidden=(4,)), data, objective, settings, labels=labels, progress=False)
    sizes = [len(b) for b in seen]
    assert sizes == [4, 4, 2, 4, 4, 2, 4, 4]  # passes of 3 batches, the last one short
    for k in range(2):
        rows = torch.cat(seen[3 * k : 3 * k + 3])
        assert sorted(rows.tolist()) == list(range(10))
    assert not torch.equal(torch.cat(seen[:3]), torch.cat(seen[3:6]))  # a fresh order

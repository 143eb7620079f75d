"""Every model trains through ``ebmlab.train.fit``: no optimizer loop outside ``train/``.

Two AST checks over ``src/ebmlab`` (only ``train/`` may do either):

1. :func:`_optimizer_uses`: each use of ``torch.optim`` (an attribute chain
   ``torch.optim.X`` or ``optim.X``, or an import from it).
2. :func:`_manual_updates`: each hand-written parameter update, the loop that
   an optimizer replaces. Within a function or a class (whose methods share
   ``self.x``), a name is a *parameter* when it is bound from
   ``.parameters()``, ``.named_parameters()``, ``.cd_parameters()``,
   ``.param_groups`` or ``nn.Parameter(...)``, or from a list, comprehension,
   loop, subscript or ``.data`` of parameters. Flagged: an in-place arithmetic
   update of a parameter (``p.add_``/``sub_``/``mul_``/``div_``/``addcmul_``/
   ``addcdiv_``/``lerp_``, ``torch._foreach_<op>_(params, ...)``, ``p -= ...``,
   ``p.data -= ...``), and of anything from its own gradient (``w.add_(w.grad)``,
   ``w.data -= lr * w.grad``). Not flagged: samplers moving chain states (not
   parameters, whatever gradient in ``x`` they follow), copies and fills that
   load or initialize weights (``copy_``, ``normal_``, ``fill_``), averages kept
   beside the weights (``avg.lerp_(p)`` updates ``avg``), toggles such as
   ``requires_grad_``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ebmlab

SRC = Path(ebmlab.__file__).parent

#: Modules that keep an optimizer of their own, and why they cannot use train.fit (none now:
#: full-batch L-BFGS runs in train.fit too, ``TrainSettings(optimizer="lbfgs")``; contrastive
#: divergence for RBMs too, ``ebmlab.boltzmann.BlockGibbsCD`` with ``optimizer="sgd"``).
EXCEPTIONS: dict[str, str] = {}

#: In-place arithmetic that steps a tensor (not copies, fills or initializers).
UPDATE_METHODS = {"add_", "sub_", "mul_", "div_", "addcmul_", "addcdiv_", "lerp_"}
#: Calls and attributes that give a module's parameters.
PARAMETER_CALLS = {"parameters", "named_parameters", "cd_parameters"}


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


def _key(node: ast.AST) -> str | None:
    """``x`` for a name, ``self.x`` for an attribute of ``self``, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "self":
        return f"self.{node.attr}"
    return None


def _targets(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Tuple | ast.List):
        return [k for elt in node.elts for k in _targets(elt)]
    if isinstance(node, ast.Starred):
        return _targets(node.value)
    key = _key(node)
    return [key] if key is not None else []


def _is_params(node: ast.AST | None, tainted: set[str]) -> bool:
    """Whether ``node`` evaluates to parameters (or containers of them)."""
    if node is None:
        return False
    key = _key(node)
    if key is not None and key in tainted:
        return True
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in PARAMETER_CALLS or name == "Parameter":
            return True
        if name in ("list", "tuple", "sorted", "reversed", "chain"):
            return any(_is_params(a, tainted) for a in node.args)
        return False
    if isinstance(node, ast.Attribute):
        return node.attr == "param_groups" or (
            node.attr == "data" and _is_params(node.value, tainted)
        )
    if isinstance(node, ast.Subscript | ast.Starred):
        return _is_params(node.value, tainted)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return any(_is_params(e, tainted) for e in node.elts)
    if isinstance(node, ast.BinOp):
        return _is_params(node.left, tainted) or _is_params(node.right, tainted)
    if isinstance(node, ast.IfExp):
        return _is_params(node.body, tainted) or _is_params(node.orelse, tainted)
    if isinstance(node, ast.ListComp | ast.GeneratorExp | ast.SetComp):
        inner = set(tainted)
        for gen in node.generators:
            inner.update(_bound(gen.target, gen.iter, inner))
        return _is_params(node.elt, inner)
    return False


def _bound(target: ast.AST, it: ast.AST, tainted: set[str]) -> list[str]:
    """The parameter names a loop ``for target in it`` binds (``zip``, ``enumerate``:
    only the positions that come from parameters)."""
    if isinstance(it, ast.Call) and isinstance(target, ast.Tuple):
        name = getattr(it.func, "id", None)
        if name == "zip" and len(target.elts) == len(it.args):
            return [
                k
                for t, a in zip(target.elts, it.args, strict=True)
                if _is_params(a, tainted)
                for k in _targets(t)
            ]
        if name == "enumerate" and len(target.elts) == 2 and it.args:
            return _targets(target.elts[1]) if _is_params(it.args[0], tainted) else []
    return _targets(target) if _is_params(it, tainted) else []


def _parameter_names(scope: ast.AST) -> set[str]:
    """Names (and ``self.x``) bound to parameters anywhere in ``scope`` (a fixpoint)."""
    tainted: set[str] = set()
    while True:
        before = len(tainted)
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and _is_params(node.value, tainted):
                for target in node.targets:
                    tainted.update(_targets(target))
            elif isinstance(node, ast.AnnAssign) and _is_params(node.value, tainted):
                tainted.update(_targets(node.target))
            elif isinstance(node, ast.For | ast.comprehension):
                tainted.update(_bound(node.target, node.iter, tainted))
        if len(tainted) == before:
            return tainted


def _root(node: ast.AST) -> str:
    """``p`` of ``p``, ``p.data``: the tensor an update writes, as source text."""
    while isinstance(node, ast.Attribute) and node.attr == "data":
        node = node.value
    return ast.unparse(node)


def _own_gradient(target: ast.AST, operands: list[ast.AST]) -> bool:
    """Whether an operand reads ``<target>.grad`` (a step of ``target`` by its gradient)."""
    want = _root(target)
    for operand in operands:
        for sub in ast.walk(operand):
            if isinstance(sub, ast.Attribute) and sub.attr == "grad" and _root(sub.value) == want:
                return True
    return False


def _manual_updates(path: Path) -> list[int]:
    """Lines that update parameters by hand (see the module docstring)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    scopes = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    lines: set[int] = set()
    for scope in scopes:
        tainted = _parameter_names(scope)
        for node in ast.walk(scope):
            if isinstance(node, ast.AugAssign) and isinstance(
                node.op, ast.Add | ast.Sub | ast.Mult | ast.Div
            ):
                if _is_params(node.target, tainted) or _own_gradient(node.target, [node.value]):
                    lines.add(node.lineno)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = node.func.attr
                operands = [*node.args, *(k.value for k in node.keywords)]
                if name.startswith("_foreach_") and name.endswith("_") and node.args:
                    if _is_params(node.args[0], tainted):
                        lines.add(node.lineno)
                elif name in UPDATE_METHODS:
                    receiver = node.func.value
                    if _is_params(receiver, tainted) or _own_gradient(receiver, operands):
                        lines.add(node.lineno)
    return sorted(lines)


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


def test_no_manual_parameter_updates_outside_the_training_loop():
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("train/"):
            continue
        lines = _manual_updates(path)
        if lines:
            found[rel] = lines
    assert not found, f"parameters updated by hand outside train/ (use ebmlab.train.fit): {found}"


#: The update of the old ``CDTrainer`` (``boltzmann/cd.py`` before it moved onto train.fit),
#: abridged: SGD with momentum by ``torch._foreach_*`` on the model's parameters.
OLD_CD_TRAINER = """
import torch

class CDTrainer:
    def __init__(self, model, momentum=0.0):
        self.model = model
        self.momentum = momentum
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffers = None

    @torch.no_grad()
    def step(self, v_pos, generator=None):
        v_neg = self.negatives(v_pos, generator=generator)
        grads = self._grads(v_pos, v_neg)
        if self.weight_decay > 0:
            grads = [
                g.add(p, alpha=self.weight_decay) if p.dim() >= 2 else g
                for p, g in zip(self.params, grads, strict=True)
            ]
        if self.momentum > 0:
            if self.buffers is None:
                self.buffers = [torch.zeros_like(p) for p in self.params]
            torch._foreach_mul_(self.buffers, self.momentum)
            torch._foreach_add_(self.buffers, grads)
            grads = self.buffers
        torch._foreach_add_(self.params, grads, alpha=-self.learning_rate)
"""


def test_the_update_check_catches_the_old_cd_trainer(tmp_path):
    bad = tmp_path / "old_cd.py"
    bad.write_text(OLD_CD_TRAINER)
    assert _manual_updates(bad) == [26]  # the parameter step, not the momentum buffers


def test_the_update_check_catches_hand_written_steps_and_spares_samplers(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch\n"
        "def sgd(model, lr):\n"
        "    for p in model.parameters():\n"
        "        p.data -= lr * p.grad\n"  # 4
        "def sgd2(model, lr):\n"
        "    params = list(model.parameters())\n"
        "    for p in params:\n"
        "        p.sub_(lr * p.grad)\n"  # 8
        "    for name, q in model.named_parameters():\n"
        "        q.data.add_(q.grad, alpha=-lr)\n"  # 10
        "class Layer:\n"
        "    def step(self, lr):\n"
        "        with torch.no_grad():\n"
        "            self.weight -= lr * self.weight.grad\n"  # 14
        "            self.bias.add_(self.bias.grad, alpha=-lr)\n"  # 15
        "def adam_like(opt, lr):\n"
        "    for group in opt.param_groups:\n"
        "        for p in group['params']:\n"
        "            p.addcdiv_(p.grad, p.grad.abs() + 1, value=-lr)\n"  # 19
    )
    assert _manual_updates(bad) == [4, 8, 10, 14, 15, 19]
    good = tmp_path / "good.py"
    good.write_text(
        "import torch\n"
        "def langevin(energy, x, eps, noise):\n"
        "    x = x.detach().requires_grad_(True)\n"
        "    (g,) = torch.autograd.grad(energy(x).sum(), x)\n"
        "    x.data.add_(g, alpha=-eps)\n"  # a chain state, not a parameter
        "    x = x.detach()\n"
        "    x.add_(noise)\n"
        "    return x\n"
        "def load(model, weights, avg):\n"
        "    for p, w in zip(model.parameters(), weights):\n"
        "        p.copy_(w)\n"  # loading weights is no update
        "        p.requires_grad_(False)\n"
        "    for a, p in zip(avg, model.parameters()):\n"
        "        a.lerp_(p, 0.01)\n"  # an average kept beside the weights
        "class Chains:\n"
        "    def step(self, grad, eps):\n"
        "        self.buffer -= eps * grad\n"
        "        self.buffer.add_(torch.randn_like(self.buffer))\n"
    )
    assert _manual_updates(good) == []


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

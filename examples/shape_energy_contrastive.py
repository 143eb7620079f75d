"""# Shaping an energy by contrast: push the right answer down, wrong answers up.

Part 1, one-to-many regression: y = +sqrt(x) or -sqrt(x) (plus noise), so a
good model gives two answers for every x > 0. A conditional energy F(x, y) (an
MLP over the pair) is trained with three loss functionals; inference is
gradient descent on y from 12 starts, the end points grouped into distinct
answers.

- energy: push F(x, y) down and nothing up: the energy collapses (flattens)
  and inference returns arbitrary answers;
- hinge: max(0, m + F(x, y) - F(x, y_bar)), with y_bar the most offending
  incorrect answer (lowest energy farther than epsilon from y). It assumes one
  right answer per x: here each branch is the other's most offending answer,
  the two pushes cancel, and the rest of the answer space is never pushed up;
- nll: F(x, y) + log integral exp(-F(x, y')) dy' pushes every answer up in
  proportion to its probability, and recovers both branches.

Least squares (the Gaussian energy, whose negative log-likelihood is the
squared error) predicts the average of the branches, about 0: never right.

Part 2, classification (scikit-learn's bundled digits): a linear energy, one
energy per class, trained with every loss functional; the most offending
answer is the lowest-energy wrong class, found by enumeration. Every loss that
pushes wrong answers up learns; the energy loss, with no push-up term, lags far
behind. (lvq2 assumes positive energies; these linear ones are not, yet it learns.)

Run:

```
.venv/bin/python examples/shape_energy_contrastive.py   (about 20 s on 2 CPU cores)
```
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from ebmlab.conditional import (
    LOSS_FUNCTIONALS,
    DiscreteConditionalEnergy,
    GaussianEnergy,
    MLPConditionalEnergy,
    fit_conditional,
    infer,
)

torch.set_num_threads(1)  # small tensors: one thread is fastest
g = torch.Generator().manual_seed(0)

# -- part 1: y^2 = x -----------------------------------------------------------------
n = 2000
x = torch.rand(n, 1, generator=g)
sign = torch.where(torch.rand(n, 1, generator=g) < 0.5, -1.0, 1.0)
y = sign * x.sqrt() + 0.03 * torch.randn(n, 1, generator=g)
box = (-1.5, 1.5)
x_test = torch.linspace(0.1, 1.0, 50)[:, None]
branch = x_test.sqrt()

print("Part 1: y^2 = x (two right answers per x)")
print(f"{'loss':<8} {'both branches found':>20} {'answers':>8}   answers at x = 0.25 (energy)")
for loss, options in [
    ("energy", {}),
    ("hinge", {"margin": 1.0, "bounds": box, "epsilon": 0.15, "resolution": 48}),
    ("nll", {"bounds": box, "resolution": 48}),
]:
    F = MLPConditionalEnergy(1, 1, hidden=(32, 32), generator=torch.Generator().manual_seed(1))
    fit_conditional(F, x, y, loss, n_steps=400, batch_size=128, lr=5e-3, generator=g, **options)
    modes = infer(F, x_test, n_restarts=12, n_steps=60, bounds=box, max_modes=2, generator=g)
    near_pos = ((modes.y[..., 0] - branch).abs() < 0.1).any(1)
    near_neg = ((modes.y[..., 0] + branch).abs() < 0.1).any(1)
    both = float((near_pos & near_neg).float().mean())
    at = infer(F, torch.tensor([[0.25]]), n_restarts=12, n_steps=60, bounds=box, max_modes=3)
    answers = ", ".join(
        f"{float(at.y[0, k, 0]):+.2f} ({float(at.energy[0, k]):.2f})"
        for k in range(int(at.n_modes[0]))
    )
    print(f"{loss:<8} {both:>20.0%} {float(modes.n_modes.float().mean()):>8.2f}   {answers}")

mse = GaussianEnergy(1, 1, hidden=(32, 32), generator=torch.Generator().manual_seed(1))
fit_conditional(mse, x, y, "nll", n_steps=400, batch_size=128, lr=5e-3, generator=g)
pred = mse.mean(x_test).detach()
print(
    f"{'mse':<8} {0.0:>20.0%} {1.0:>8.2f}   mean |prediction| = {float(pred.abs().mean()):.3f}"
    f" (true answers at +-{float(branch.mean()):.3f} on average)"
)

# -- part 2: digits, discrete answers ----------------------------------------------------
digits = load_digits()
data = torch.tensor(digits.data, dtype=torch.float32) / 16.0
labels = torch.tensor(digits.target)
order = torch.randperm(len(labels), generator=g)
train, test = order[:1200], order[1200:]
print("\nPart 2: digits (10 classes; test accuracy of the lowest-energy class)")
for loss in sorted(set(LOSS_FUNCTIONALS) - {"margin", "mmi"}):
    F = DiscreteConditionalEnergy(64, 10, hidden=(), generator=torch.Generator().manual_seed(1))
    fit_conditional(F, data[train], labels[train], loss, n_steps=150, batch_size=128, lr=0.1,
                    generator=g, margin=1.0)  # fmt: skip
    pred = infer(F, data[test], max_modes=1).y[:, 0]
    accuracy = float((pred == labels[test]).float().mean())
    print(f"  {loss:<20} {accuracy:6.1%}   ({LOSS_FUNCTIONALS[loss].summary})")

r"""
# Conditional energies F(x, y): one input, several answers

Energy-based learning in the sense of LeCun et al. (2006): a function
$F(x, y)$ scores how well an answer $y$ fits an input $x$, low meaning good.
Prediction is not a forward pass but a search,

$$\hat y(x) = \arg\min_y F(x, y),$$

and nothing forces that minimum to be unique: an input can have two right
answers, and an energy can say so where a regression network, which outputs one
number, cannot. Learning must shape $F$ so that the right answers get the
lowest energy. The *loss functional* decides how, and some choices make the
energy collapse.

`ebmlab.conditional` has the energies, the inference (`infer`), the loss
functionals (`LOSS_FUNCTIONALS`) and the fitting loop (`fit_conditional`).
"""

# %%
# ## One x with two answers
#
# The data: $y = \pm\sqrt{x}$ with a random sign, plus a little noise. For every
# $x > 0$ there are two right answers.
import time

import matplotlib.pyplot as plt
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

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
n = 2000
x = torch.rand(n, 1, generator=g)
sign = torch.where(torch.rand(n, 1, generator=g) < 0.5, -1.0, 1.0)
y = sign * x.sqrt() + 0.03 * torch.randn(n, 1, generator=g)
box = (-1.5, 1.5)

# %%
# ## Least squares predicts the average: never right
#
# Squared error is the NLL of a Gaussian energy with one mean per $x$ (tutorial
# 2). The best single answer under squared error is the conditional mean, which
# here is about 0, between the two branches:
mse = GaussianEnergy(1, 1, hidden=(32, 32), generator=torch.Generator().manual_seed(1))
fit_conditional(mse, x, y, "nll", n_steps=400, batch_size=128, lr=5e-3, generator=g)
x_test = torch.linspace(0.1, 1.0, 50)[:, None]
branch = x_test.sqrt()
pred = mse.mean(x_test).detach()
print(
    f"least squares: mean |prediction| {float(pred.abs().mean()):.3f}, "
    f"true answers at +-{float(branch.mean()):.3f} on average"
)

# %%
# ## An energy over (x, y), trained with three loss functionals
#
# `MLPConditionalEnergy` is an MLP of the pair $(x, y)$. We train it three ways,
# with $E_i = F(x_i, y_i)$ the energy of the right answer:
#
# * **energy** loss, $E_i$: push the right answer down, nothing up;
# * **hinge**, $\max(0, m + E_i - \bar E)$, with $\bar E$ the energy of the *most
#   offending incorrect answer* (the lowest-energy $y$ farther than $\epsilon$
#   from $y_i$): push it up until it is a margin $m$ above;
# * **nll**, $E_i + \log\int e^{-F(x_i, y')}dy'$: push *every* answer up in
#   proportion to its probability (the free energy is computed on a grid of
#   answers).
#
# Inference is gradient descent on $y$ from 12 starting points; the end points
# are grouped into distinct answers (`infer`).
models = {}
for loss, options in [
    ("energy", {}),
    ("hinge", {"margin": 1.0, "bounds": box, "epsilon": 0.15, "resolution": 48}),
    ("nll", {"bounds": box, "resolution": 48}),
]:
    t0 = time.perf_counter()
    F = MLPConditionalEnergy(1, 1, hidden=(32, 32), generator=torch.Generator().manual_seed(1))
    fit_conditional(F, x, y, loss, n_steps=400, batch_size=128, lr=5e-3, generator=g, **options)
    modes = infer(F, x_test, n_restarts=12, n_steps=60, bounds=box, max_modes=2, generator=g)
    near_pos = ((modes.y[..., 0] - branch).abs() < 0.1).any(1)
    near_neg = ((modes.y[..., 0] + branch).abs() < 0.1).any(1)
    both = float((near_pos & near_neg).float().mean())
    models[loss] = F
    print(
        f"{loss:<7} both branches found at {both:>4.0%} of test x; "
        f"{float(modes.n_modes.float().mean()):.2f} answers on average "
        f"({time.perf_counter() - t0:.1f} s)"
    )

# %%
# The landscapes show why. Each panel is the Gibbs distribution over answers
# that the energy defines, $P(y \mid x) \propto e^{-F(x, y)}$, normalized over
# a grid of $y$ for each $x$ (bright = probable), the training pairs on top:
xs = torch.linspace(0.0, 1.0, 80)
ys = torch.linspace(*box, 80)
xx, yy = torch.meshgrid(xs, ys, indexing="xy")
fig, axes = plt.subplots(1, 3, figsize=(11, 3.3))
for ax, (loss, F) in zip(axes, models.items(), strict=True):
    with torch.no_grad():
        e = F(xx.reshape(-1, 1), yy.reshape(-1, 1)).reshape(80, 80)  # rows: y, columns: x
    p_y_given_x = torch.softmax(-e, dim=0)
    ax.imshow(p_y_given_x.numpy(), origin="lower", aspect="auto", extent=(0, 1, *box))
    ax.scatter(x[:300, 0].numpy(), y[:300, 0].numpy(), s=1, color="w")
    ax.set_title(f"loss: {loss}")
    ax.set_xlabel("x")
axes[0].set_ylabel("y")
fig.tight_layout()
for loss, F in models.items():
    with torch.no_grad():
        e = F(xx.reshape(-1, 1), yy.reshape(-1, 1))
        e_data = F(x, y)
    spread = float(e.max() - e.min())
    print(
        f"{loss:<7} energy range over the plane {spread:8.3f}; "
        f"mean on data {float(e_data.mean()):9.3f}, over the plane {float(e.mean()):9.3f}"
    )

# %%
# * The **energy** loss has no term that pushes anything up, so the cheapest way
#   to lower $E_i$ is to lower *everything*: the energy of the whole plane falls
#   with the data's (compare the means printed above), and it falls fastest
#   towards one edge, so all of $P(y \mid x)$ sits on the boundary of the answer
#   box and inference runs there. This is the collapse of tutorial 1, for
#   conditional energies.
# * The **hinge** assumes one right answer per $x$: here each branch is the
#   other's most offending answer, so the two pushes cancel, and the rest of the
#   answer space is never pushed up. Its energy ends almost flat (a range of a
#   few thousandths, printed above; the colour scale of its panel stretches tiny
#   differences): a collapse of another kind, where every answer is about
#   equally good.
# * The **nll** pushes every answer up in proportion to its probability and
#   recovers both branches.
#
# ## The loss functionals on a classification task
#
# With discrete answers (classes) the most offending answer is the lowest-energy
# wrong class, found by enumeration. A linear energy per class on the 8x8 digits,
# trained with every loss functional for 150 updates:
digits = load_digits()
data = torch.tensor(digits.data, dtype=torch.float32) / 16.0
labels = torch.tensor(digits.target)
order = torch.randperm(len(labels), generator=g)
train, test = order[:1200], order[1200:]
print(f"{'loss':<20} {'accuracy':>8}   formula")
for loss in sorted(set(LOSS_FUNCTIONALS) - {"margin", "mmi"}):
    F = DiscreteConditionalEnergy(64, 10, hidden=(), generator=torch.Generator().manual_seed(1))
    fit_conditional(F, data[train], labels[train], loss, n_steps=150, batch_size=128, lr=0.1,
                    generator=g, margin=1.0)  # fmt: skip
    pred = infer(F, data[test], max_modes=1).y[:, 0]
    accuracy = float((pred == labels[test]).float().mean())
    print(f"{loss:<20} {accuracy:>8.1%}   {LOSS_FUNCTIONALS[loss].summary}")

# %%
# Every loss with a push-up term learns; the plain energy loss, with none, lags
# far behind. `mce` is slower than the rest: it is a sigmoid of the energy
# difference, whose gradient vanishes for answers that are badly wrong, the
# saturation of squared error on a sigmoid from tutorial 2. (`margin` and `mmi`
# are aliases of `hinge` and `nll`. `lvq2` assumes positive energies; these
# linear ones are not, yet it learns.)
#
# The other way to avoid collapse is architectural: an energy that *cannot* be
# low on more than a fixed volume (PCA, K-means, sparse coding: see
# `examples/shape_energy_architectural.py` and
# `examples/shape_energy_regularized.py`). The scikit-learn face of all this is
# `ebmlab.estimators.EnergyRegressor`, which returns every low-energy answer.

r"""
# Choosing an objective: CD, score matching, NCE

ebmlab has three families of objectives for energies whose normalizer is
unknown (`docs/objectives.md` has the details):

| family | names | samples the model? | learns $\log Z$? | fits |
|---|---|---|---|---|
| contrastive divergence | `cd`, `pcd`, `short-run` | yes, by MCMC | no | the NLL gradient |
| score matching | `sm`, `ssm`, `dsm` | no | no | the score $-\nabla_x E$ |
| noise-contrastive | `nce` | no (noise) | yes | data against noise |

Every objective maps `(energy, batch, state)` to `(loss, diagnostics, state)`
and trains through the same `ebmlab.train.fit`, so switching is one line. This
page first reads the published benchmark, then runs a small live comparison you
can reproduce in under a minute.
"""

# %%
# ## What the benchmark says
#
# `benchmarks/objectives.py` trains every objective on the six 2-D toys with the
# same network (an MLP 3 x 64 with a Gaussian reference term), the same initial
# weights, 50,000 training points and 30 s of one CPU thread per cell, and
# measures the *exact* held-out NLL (quadrature $\log Z$) against the toy's
# entropy floor. From `docs/benchmarks.md` (section "Objectives"), the gap to
# the floor of ebmlab's best objective per toy:
#
# | toy | best objective | gap (nats) |
# |---|---|---:|
# | eight_gaussians | nce | -0.009 |
# | two_moons | nce | -0.005 |
# | rings | nce | 0.003 |
# | checkerboard (90 s) | nce | 0.026 |
# | spirals | nce with a mixture noise | 0.028 |
# | pinwheel | nce | -0.002 |
#
# (A gap can come out slightly negative: the floor is itself a Monte Carlo
# estimate.) The benchmark's reading, in short:
#
# * **NCE** reached the floor fastest on every toy, with no sampler and a cheap
#   update (5-7 ms per update at batch 512). Its weak point is the noise: a
#   Gaussian fitted to the data is fine in 2-D and hopeless for images.
# * **CD-k from the data** (`cd`) was the most reliable MCMC form within a short
#   budget (gap below 0.12 nats on every toy at 30 s). **PCD** needs longer runs
#   (its chains lag a fast-changing model) but is the objective that scales to
#   images.
# * **Score matching** is fast and excellent on smooth targets, unstable on sharp
#   or thin ones: the Fisher divergence does not see mass far from the data.
#   **DSM** has the cheapest update; its result depends on its noise level.
# * **Short-run** CD learns a sampler, not a density: its exact NLL can be poor
#   even when its samples look right.
#
# ## A live comparison
#
# The same network, the same initial weights and the same number of updates for
# five objectives on `eight_gaussians`. The budget here is tiny (600 updates,
# batch 256) so the page builds fast; the benchmark's numbers above come from
# 30 s per cell with batch 512 (5,750 updates for NCE on this toy).
import copy
import time

import matplotlib.pyplot as plt
import torch

from ebmlab.data import make_toy
from ebmlab.energies import MLPEnergy
from ebmlab.evaluation import heldout_nll
from ebmlab.objectives import (
    ContrastiveDivergence,
    DenoisingScoreMatching,
    NoiseContrastiveEstimation,
    ScoreMatching,
)
from ebmlab.samplers import MALA
from ebmlab.train import TrainSettings, fit

torch.set_num_threads(1)
toy = make_toy("eight_gaussians")
train = toy.sample(20_000, seed=0)
test = toy.sample(5_000, seed=1)
floor, _ = toy.entropy()
xmin, xmax, ymin, ymax = toy.bounds
box = [(xmin, xmax), (ymin, ymax)]


def uniform_box(n: int, g: torch.Generator | None) -> torch.Tensor:
    """Fresh chain starts, uniform over the toy's box (for PCD's buffer)."""
    u = torch.rand(n, 2, generator=g)
    return torch.stack([xmin + (xmax - xmin) * u[:, 0], ymin + (ymax - ymin) * u[:, 1]], 1)


torch.manual_seed(0)
initial = MLPEnergy(2, hidden=(64, 64), base_scale=4.0)
objectives = {
    "cd (MALA, k=10)": ContrastiveDivergence(MALA(0.02), n_steps=10, mode="cd"),
    "pcd (MALA, k=10)": ContrastiveDivergence(
        MALA(0.02), n_steps=10, mode="pcd", init_fn=uniform_box
    ),
    "sm (exact Hessian)": ScoreMatching(),
    "dsm (sigma 0.1)": DenoisingScoreMatching(0.1),
    "nce (Gaussian noise, nu=4)": NoiseContrastiveEstimation(train, noise_ratio=4.0),
}
settings = TrainSettings(steps=600, batch_size=256, lr=1e-2, warmup_steps=30)
results = {}
for name, objective in objectives.items():
    energy = copy.deepcopy(initial)
    state = None
    if isinstance(objective, ContrastiveDivergence):
        state = objective.init_state(512, generator=torch.Generator().manual_seed(1))
    t0 = time.perf_counter()
    fit(energy, train, objective, settings, state=state, progress=False)
    seconds = time.perf_counter() - t0
    r = heldout_nll(energy, test, box, resolution=256)
    results[name] = (energy, r, seconds)

print(f"entropy floor {floor:.3f} nats")
print(f"{'objective':<28} {'held-out NLL':>12} {'gap':>7} {'ms/update':>10}")
for name, (_, r, seconds) in results.items():
    gap = r.nll - floor
    print(f"{name:<28} {r.nll:>12.3f} {gap:>7.3f} {1000 * seconds / settings.steps:>10.1f}")

ranking = sorted(results, key=lambda k: results[k][1].nll)
print("ranked by held-out NLL:", " < ".join(n.split(" ")[0] for n in ranking))

# %%
# Read this table for what it is: one seed, a few hundred updates. It measures
# how fast each objective *starts*, not where it ends, and its ranking need not
# be the benchmark's. Two things carry over. The cost per update differs
# several-fold between a CD update (ten MALA steps, each a forward and backward
# pass) and a DSM or NCE update (one pass; the `ms/update` column is wall time on
# whatever machine built this page), so at equal *time* the cheap objectives get
# several times more updates. And every number here is an exact
# NLL, so the comparison cannot flatter an objective whose samples merely look
# right.
#
# NCE also learns $\log Z$ as a parameter. How close is it to the exact value?
nce = objectives["nce (Gaussian noise, nu=4)"]
exact = results["nce (Gaussian noise, nu=4)"][1].log_z
print(f"NCE's learned log Z {float(nce.log_z.detach()):.3f}, quadrature log Z {exact:.3f}")

# %%
# The learned densities, each normalized by its own quadrature $\log Z$:
res = 120
fx = torch.linspace(xmin, xmax, res)
fy = torch.linspace(ymin, ymax, res)
mesh = torch.stack(torch.meshgrid(fx, fy, indexing="xy"), -1).reshape(-1, 2)
fig, axes = plt.subplots(1, len(results) + 1, figsize=(3 * (len(results) + 1), 3))
with torch.no_grad():
    axes[0].imshow(
        toy.log_prob(mesh.double()).exp().reshape(res, res).numpy(),
        origin="lower",
        extent=(xmin, xmax, ymin, ymax),
    )
    axes[0].set_title("true density")
    for ax, (name, (energy, r, _)) in zip(axes[1:], results.items(), strict=True):
        dens = torch.exp(-energy(mesh) - r.log_z).reshape(res, res)
        ax.imshow(dens.numpy(), origin="lower", extent=(xmin, xmax, ymin, ymax))
        ax.set_title(f"{name.split(' ')[0]}: gap {r.nll - floor:.2f}")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
# After so few updates some objectives have only found the ring on which the
# eight modes sit, not the modes themselves: that is what a gap of 0.4 nats
# looks like.
#
# ## How to choose
#
# * Low dimension, data a simple noise can cover: **NCE**. It is the fastest to
#   the floor and gives you $\log Z$ for free (check it, as above).
# * Smooth densities and no sampler wanted: **score matching** (`dsm` is the
#   cheapest, `sm` exact up to 16 dimensions, `ssm` for more); watch for
#   spurious modes far from the data.
# * Images and anything no simple noise covers: **PCD** with a replay buffer,
#   with enough updates for its chains to keep up (`energy_gap` near 0).
# * Whatever you pick, measure: in 1-3 dimensions `ebmlab.evaluation.heldout_nll`
#   is exact; above that, estimate $\log Z$ (tutorial 4).
#
# To reproduce the published table (132 cells of 30 s of CPU each):
#
# ```
# python3 benchmarks/objectives.py --mode time --budget 30 --jobs 3
# ```

r"""
# Maximum likelihood without a normalizer

The question that brings most people to ebmlab: *how do I fit a model whose
normalizer I cannot compute, for instance a neural network, by maximum
likelihood, when naively maximizing the predicted likelihood just predicts high
values everywhere?*

An energy-based model is a density

$$p_\theta(x) = \frac{e^{-E_\theta(x)}}{Z(\theta)}, \qquad
Z(\theta) = \int e^{-E_\theta(x)}\,dx,$$

where the energy $E_\theta$ can be any function, a neural network included. Low
energy means high probability. The negative log-likelihood of data $x_1, \dots,
x_n$ is

$$\mathrm{NLL}(\theta) = \frac1n \sum_i E_\theta(x_i) + \log Z(\theta).$$

The first term is easy. The second is an integral over the whole space, and
this page is about it. We work on a 2-D toy where $\log Z$ can still be
computed exactly (by quadrature on a grid), so every claim below is checked
against the truth. The same code runs unchanged in dimensions where it cannot.
"""

# %%
# ## The data and its entropy floor
#
# `ebmlab.data.make_toy` builds the 2-D toy distributions. Each knows its exact
# log-density, so we know the best NLL any model can reach on held-out data:
# the entropy $H(p_\mathrm{data}) = -\mathbb{E}[\log p_\mathrm{data}(x)]$. Any
# model's expected NLL is $H + \mathrm{KL}(p_\mathrm{data}\,\|\,p_\theta) \ge H$.
import time
import warnings

import matplotlib.pyplot as plt
import torch
from torch import nn

from ebmlab.data import make_toy
from ebmlab.evaluation import heldout_nll
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.partition import quadrature_log_z
from ebmlab.samplers import MALA
from ebmlab.train import TrainSettings, fit

torch.set_num_threads(1)  # small matrices: one thread is fastest
torch.manual_seed(0)

toy = make_toy("two_moons")
train = toy.sample(10_000, seed=0)
test = toy.sample(5_000, seed=1)
floor, floor_se = toy.entropy()
xmin, xmax, ymin, ymax = toy.bounds
box = [(xmin, xmax), (ymin, ymax)]
print(f"toy: {toy}, box {box}")
print(f"entropy floor: {floor:.3f} +- {floor_se:.3f} nats (no model can do better on average)")

# %%
# ## Your own `nn.Module` as the energy
#
# Nothing in ebmlab requires its own energy classes: any `nn.Module` whose
# `forward` maps a batch `(N, 2)` to energies `(N,)` will do. This one is a small
# MLP plus an optional *reference term* $|x|^2 / (2 s^2)$; we come back to that
# term below.


class MyEnergy(nn.Module):
    """E(x) = mlp(x) + |x|^2 / (2 s^2): low energy = probable."""

    def __init__(self, reference_scale: float | None = 4.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 1)
        )
        self.reference_scale = reference_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.net(x).squeeze(-1)
        if self.reference_scale is not None:
            e = e + x.pow(2).sum(-1) / (2 * self.reference_scale**2)
        return e


def exact_nll(energy: nn.Module) -> tuple[float, float]:
    """Held-out NLL and log Z, log Z by quadrature on a 256 x 256 grid."""
    r = heldout_nll(energy, test, box, resolution=256)
    return r.nll, r.log_z


# %%
# ## Why maximizing the unnormalized likelihood fails
#
# Drop $\log Z$ and maximize $-E_\theta(x)$ on the data, i.e. minimize the mean
# data energy. Nothing stops the network from lowering the energy *everywhere*:
# the output bias alone moves every energy down by the same amount, and the other
# weights are free to lower it even faster away from the data. The "likelihood"
# $e^{-E}$ of the data goes up without bound, while the true NLL, which includes
# $\log Z$, gets *worse*. (Once the mass leaves the quadrature box, the grid
# underestimates $\log Z$, so the NLL printed below is then a lower bound:
# the truth is worse still.)
naive = MyEnergy()
opt = torch.optim.Adam(naive.parameters(), lr=5e-3)
grid_pts = torch.rand(2000, 2) * torch.tensor([xmax - xmin, ymax - ymin]) + torch.tensor(
    [xmin, ymin]
)
history = {"step": [], "data": [], "everywhere": [], "nll": []}
for step in range(301):
    if step % 50 == 0:
        with torch.no_grad():
            history["step"].append(step)
            history["data"].append(float(naive(test).mean()))
            history["everywhere"].append(float(naive(grid_pts).mean()))
        with warnings.catch_warnings():  # log Z leaves any fixed box: quadrature warns
            warnings.simplefilter("ignore", RuntimeWarning)
            history["nll"].append(exact_nll(naive)[0])
    loss = naive(train[torch.randint(len(train), (256,))]).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()

print(f"{'step':>5} {'mean E(data)':>13} {'mean E(box)':>12} {'exact NLL':>10}")
for i, s in enumerate(history["step"]):
    print(
        f"{s:>5} {history['data'][i]:>13.1f} {history['everywhere'][i]:>12.1f}"
        f" {history['nll'][i]:>10.3f}"
    )

fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
ax[0].plot(history["step"], history["data"], "o-", label="mean E on data")
ax[0].plot(history["step"], history["everywhere"], "s--", label="mean E over the whole box")
ax[0].set_xlabel("update")
ax[0].set_ylabel("energy")
ax[0].set_title("minimizing E(data) alone: the energy collapses")
ax[0].legend()
ax[1].plot(history["step"], history["nll"], "o-", color="C3", label="exact held-out NLL")
ax[1].axhline(floor, color="k", ls=":", label="entropy floor")
ax[1].set_yscale("log")
ax[1].set_xlabel("update")
ax[1].set_title("...and the true NLL gets worse")
ax[1].legend()
fig.tight_layout()

# %%
# Both curves fall together (the box even faster than the data): the data's
# energy is not lowered *relative* to anything. That is what "predicts high
# values everywhere" looks like in energy terms. The missing ingredient is the
# gradient of $\log Z$.
#
# ## The gradient of log Z is an expectation under the model
#
# Differentiate $\log Z(\theta) = \log \int e^{-E_\theta(x)} dx$:
#
# $$\nabla_\theta \log Z
#   = \frac{\int -\nabla_\theta E_\theta(x)\, e^{-E_\theta(x)}\,dx}{Z}
#   = -\,\mathbb{E}_{x \sim p_\theta}\left[\nabla_\theta E_\theta(x)\right].$$
#
# So the NLL gradient is
#
# $$\nabla_\theta \mathrm{NLL}
#   = \mathbb{E}_{\mathrm{data}}[\nabla_\theta E_\theta]
#   - \mathbb{E}_{p_\theta}[\nabla_\theta E_\theta]:$$
#
# push the energy of the data **down** and the energy of the model's own samples
# **up**. When the model's samples look like the data, the two terms cancel and
# learning stops. We never need $Z$, only samples from the model.
#
# Let us check the identity numerically on a fresh network. The left side is the
# gradient of the quadrature $\log Z$ (autograd through a log-sum-exp over the
# grid); the right side averages $-\nabla_\theta E$ over exact samples of the
# model (drawn from the same grid).
check = MyEnergy()
res = 200
gx = torch.linspace(-6.0, 6.0, res)
cells = torch.cartesian_prod(gx, gx)
cell_area = (gx[1] - gx[0]) ** 2
log_z = torch.logsumexp(-check(cells), 0) + cell_area.log()
grad_exact = torch.autograd.grad(log_z, list(check.parameters()))
with torch.no_grad():
    probs = torch.softmax(-check(cells), 0)
samples = cells[torch.multinomial(probs, 4000, replacement=True)]
samples = samples + (torch.rand_like(samples) - 0.5) * (gx[1] - gx[0])  # uniform in the cell
grad_mc = torch.autograd.grad(-check(samples).mean(), list(check.parameters()))
flat_exact = torch.cat([g.flatten() for g in grad_exact])
flat_mc = torch.cat([g.flatten() for g in grad_mc])
cosine = float(torch.nn.functional.cosine_similarity(flat_exact, flat_mc, dim=0))
rel = float((flat_exact - flat_mc).norm() / flat_exact.norm())
print("grad log Z (quadrature) vs -E_model[grad E] (4,000 model samples):")
print(f"  cosine similarity {cosine:.4f}, relative error {rel:.3f}")

# %%
# The two agree up to Monte Carlo error. In more than three dimensions there is
# no grid, but MCMC still gives samples: that is contrastive divergence.
#
# ## Contrastive divergence with your own network
#
# `ContrastiveDivergence` draws the negatives by MCMC. With `mode="cd"` (CD-k,
# Hinton 2002) each update starts $k$ MALA steps at the data batch; `"pcd"`
# keeps persistent chains in a replay buffer; `"short-run"` starts at noise.
# `ebmlab.train.fit` is the one training loop of the library: it takes any
# `nn.Module` and any objective, and logs the diagnostics.
energy = MyEnergy()
cd = ContrastiveDivergence(MALA(0.02), n_steps=10, mode="cd")
settings = TrainSettings(steps=600, batch_size=256, lr=5e-3, warmup_steps=50, log_every=25)
t0 = time.perf_counter()
result = fit(energy, train, cd, settings, progress=False)
print(f"trained {result.step} updates in {time.perf_counter() - t0:.1f} s")
nll, logz = exact_nll(energy)
print(f"exact held-out NLL {nll:.3f} nats (log Z = {logz:.3f} by quadrature)")
print(f"entropy floor      {floor:.3f} nats; gap {nll - floor:.3f} nats")

# %%
# The benchmark in `docs/benchmarks.md` (3 x 64 MLP, 50,000 training points,
# 30 s of CPU, batch 512) reaches a gap below 0.12 nats with `cd` on every toy;
# this page trains for 600 updates to keep the docs build short, so its gap is
# larger. `examples/fit_two_moons.py` trains 3,000 updates with persistent
# chains.
#
# The learned density next to the data:
with torch.no_grad():
    fx = torch.linspace(xmin, xmax, 150)
    fy = torch.linspace(ymin, ymax, 150)
    mesh = torch.stack(torch.meshgrid(fx, fy, indexing="xy"), -1).reshape(-1, 2)
    density = torch.exp(-energy(mesh) - logz).reshape(150, 150)
fig, ax = plt.subplots(1, 2, figsize=(9, 3.6))
ax[0].scatter(*test[:2000].numpy().T, s=2)
ax[0].set_title("held-out data")
ax[1].imshow(density.numpy(), origin="lower", extent=(xmin, xmax, ymin, ymax), aspect="auto")
ax[1].set_title("learned density exp(-E) / Z")
fig.tight_layout()

# %%
# ## What the training diagnostics mean
#
# `fit` logs, every `log_every` updates:
#
# * `energy_pos`, `energy_neg`: mean energy of the data batch and of the
#   negatives;
# * `energy_gap` $= \overline{E}(\text{negatives}) - \overline{E}(\text{data})$:
#   this is (minus) the size of the CD gradient signal. Near 0 means the sampler's
#   output looks like data to the model; large and positive means the chains lag
#   behind the model (more steps or a larger step size); large and *negative*
#   means the model has low-energy regions that the data do not occupy, which
#   the sampler has found;
# * `acceptance_rate`: the MALA acceptance. Around 0.5-0.9 is healthy; near 0 the
#   step size is too large for the energy's curvature and the negatives do not
#   move; near 1 the steps may be needlessly small.
steps = [r["step"] for r in result.metrics]
fig, ax = plt.subplots(1, 3, figsize=(11, 3))
ax[0].plot(steps, [r["energy_pos"] for r in result.metrics], label="data")
ax[0].plot(steps, [r["energy_neg"] for r in result.metrics], label="negatives")
ax[0].set_title("mean energies")
ax[0].legend()
ax[1].plot(steps, [r["energy_gap"] for r in result.metrics])
ax[1].axhline(0, color="k", lw=0.5)
ax[1].set_title("energy gap")
ax[2].plot(steps, [r["acceptance_rate"] for r in result.metrics])
ax[2].set_ylim(0, 1)
ax[2].set_title("MALA acceptance")
for a in ax:
    a.set_xlabel("update")
fig.tight_layout()
last = result.metrics[-1]
print(
    f"last logged row: energy_gap {last['energy_gap']:.3f}, "
    f"acceptance {last['acceptance_rate']:.2f}"
)

# %%
# ## Why a reference term keeps exp(-E) integrable
#
# Far from the data a SiLU network levels off or changes linearly. Where it
# levels off, $e^{-E}$ tends to a positive constant and $Z$ grows like the
# area; where it decreases, $e^{-E}$ grows exponentially. Either way
# $Z = \infty$. The model is not a density at all, and nothing that happens near
# the data tells. The reference term $|x|^2 / (2 s^2)$ (a broad Gaussian; the
# `base_scale` of `ebmlab.energies.MLPEnergy`) beats any linear growth, so $Z$ is
# finite whatever the network does.
#
# The test: compute $\log Z$ by quadrature on larger and larger boxes (cells of
# the same width). For an integrable energy it converges; for a non-integrable
# one it keeps growing with the box.
torch.manual_seed(3)
untrained_no_ref = MyEnergy(reference_scale=None)
untrained_ref = MyEnergy(reference_scale=4.0)
untrained_ref.net.load_state_dict(untrained_no_ref.net.state_dict())  # same network
models = {
    "fresh, no reference": untrained_no_ref,
    "fresh, reference s=4": untrained_ref,
    "trained, reference s=4": energy,
}
print(f"{'box half-width':>15}" + "".join(f"{name:>24}" for name in models))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # the boundary-mass warning, expected
    for half in (4, 8, 16, 32, 64):
        row = [
            quadrature_log_z(m, [(-half, half)] * 2, 16 * half, max_expansions=0).log_z
            for m in models.values()
        ]
        print(f"{half:>15}" + "".join(f"{v:>24.3f}" for v in row))

# %%
# With the reference term $\log Z$ settles once the box holds the data. Without
# it, the very same network gains about $\log 4 \approx 1.39$ nats each time the
# box doubles: $e^{-E}$ levels off far away and $Z$ grows with the area. Its
# "log-likelihood" is meaningless. Training does not protect you: CD-k chains
# start at the data and never travel that far, so they never push those regions
# up. Whether a network trained without the term happens to be integrable is luck;
# with the term it is guaranteed.
#
# ## Which objectives are maximum likelihood, and which are only consistent
#
# * **CD with exact model samples** follows the NLL gradient exactly (above).
#   In practice the chains are finite: **PCD** (persistent chains) approximates
#   the maximum-likelihood gradient best when the chains keep up (`energy_gap`
#   near 0); **CD-k** started at the data is biased (it minimizes a different
#   contrast), and **short-run** CD learns a $k$-step sampler rather than a
#   density.
# * **Score matching** (`sm`, `ssm`, `dsm`) minimizes the Fisher divergence
#   $\mathbb{E}\,|\nabla_x \log p_\mathrm{data} - \nabla_x \log p_\theta|^2$; it
#   never sees $Z$, and is *consistent* (right answer with infinite data and a
#   well-specified model), but it is not maximum likelihood and is blind to how
#   mass is split between disconnected regions. DSM fits the data smoothed by
#   its noise level.
# * **NCE** is logistic regression of data against noise with $\log Z$ as a
#   learned parameter: consistent, and it learns the normalizer too, but its
#   efficiency depends on the noise.
# * With a **tractable normalizer** (Gaussian, categorical, ...) maximum
#   likelihood is just minimizing the NLL: see the next tutorial.
#
# Tutorial 3 compares these objectives with the benchmark's numbers.

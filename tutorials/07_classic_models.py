r"""
# Classic energy-based models

Long before neural energies, physics and early neural networks used energies
with structure: spins on a lattice, binary units with pairwise couplings. They
remain the best place to check an EBM toolkit, because many of their answers
are known exactly. This page visits five:

1. the **Ising model**, checked against Onsager's exact solution;
2. the Ising model as a **prior for image denoising**;
3. **RBMs and DBNs** on binarized digits, with an exact log-likelihood;
4. **Hopfield networks** and their storage capacity;
5. **products of experts**: a sum of energies.

All are `ebmlab.energies.Energy` objects with the library's sign convention
($p \propto e^{-E}$), so samplers and `ebmlab.partition` work on them unchanged.
"""

# %%
# ## 1. The Ising model against Onsager
#
# Spins $s_i = \pm 1$ on an $L \times L$ periodic lattice, energy
# $E(s) = -\beta J \sum_{\langle ij\rangle} s_i s_j$. Below the critical
# temperature $T_c = 2 / \log(1 + \sqrt2) \approx 2.269$ the spins align;
# Onsager (1944) and Yang (1952) give the spontaneous magnetization
# $m(T) = (1 - \sinh^{-4}(2/T))^{1/8}$ of the infinite lattice exactly.
# `run_ising` simulates with Wolff cluster moves (which do not slow down near
# $T_c$) and returns observables with standard errors.
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ebmlab.boltzmann import DBN, HopfieldNetwork
from ebmlab.energies import Gaussian, SumEnergy
from ebmlab.estimators import BernoulliRBM
from ebmlab.lattice import (
    CRITICAL_TEMPERATURE,
    IsingDenoiser,
    flip_pixels,
    onsager_magnetization,
    pixel_error,
    run_ising,
)
from ebmlab.partition import log_z

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
print(f"T_c = {CRITICAL_TEMPERATURE:.4f}")
temps = [1.5, 1.8, 2.0, 2.1, 2.2, 2.3, 2.5, 3.0]
L = 32
t0 = time.perf_counter()
sim = [run_ising(L, t, 200, "wolff", n_chains=4, seed=0) for t in temps]
print(f"{'T':>4} {'|m| simulated':>16} {'Onsager (L = inf)':>18}")
for t, out in zip(temps, sim, strict=True):
    print(
        f"{t:>4} {out['magnetization']:>9.4f} ± {out['magnetization_stderr']:.4f} "
        f"{onsager_magnetization(t):>18.4f}"
    )
print(f"({time.perf_counter() - t0:.1f} s)")
t_fine = np.linspace(1.4, 3.1, 200)
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(t_fine, [onsager_magnetization(t) for t in t_fine], "k-", label="Onsager, L = inf")
m_sim = [o["magnetization"] for o in sim]
m_err = [2 * o["magnetization_stderr"] for o in sim]
ax.errorbar(temps, m_sim, yerr=m_err, fmt="o", label=f"Wolff, L = {L} (± 2 SE)")
ax.axvline(CRITICAL_TEMPERATURE, color="C3", ls=":", label="T_c")
ax.set_xlabel("temperature T")
ax.set_ylabel("|magnetization| per spin")
ax.legend()
fig.tight_layout()

# %%
# Well below $T_c$ the finite lattice matches the exact curve within its error
# bars. Closer to $T_c$ it falls a little below, by a few standard errors: a
# finite-size effect, which shrinks as $L$ grows. Above $T_c$ the infinite
# lattice has no magnetization, while a finite one keeps a nonzero $|m|$ that
# vanishes only as $L \to \infty$. The
# `ebmlab ising` command runs the same simulation from the shell;
# `docs/benchmarks.md` compares $L = 64$ with Onsager's and Kaufman's exact
# energies and specific heats.
#
# ## 2. An Ising prior for denoising binary images
#
# A binary image $x$ observed through noise that flips each pixel with
# probability $q$: the posterior is an Ising model with a field towards the
# observation $y$,
#
# $$p(x \mid y) \propto \exp\Big(J\sum_{\langle ij\rangle} x_i x_j
#   + \eta \sum_i x_i y_i\Big), \qquad \eta = \tfrac12\log\tfrac{1-q}{q}.$$
#
# The coupling $J$ says "neighbouring pixels agree". `IsingDenoiser` restores
# by the Gibbs posterior mean or by ICM (greedy energy descent). Digits enlarged
# to 32x32 so strokes are several pixels wide:
images = torch.from_numpy(np.where(load_digits().images[:200] > 8, 1.0, -1.0)).float()
clean = images.repeat_interleave(4, 1).repeat_interleave(4, 2)  # (200, 32, 32)
noisy = flip_pixels(clean, 0.1, generator=g)
print(f"pixel error of the noisy images: {pixel_error(noisy, clean):.4f}")
restored = {}
for method, options in (("icm", {}), ("gibbs", {"n_sweeps": 60, "burn_in": 6})):
    for coupling in (0.5, 1.1):
        out = IsingDenoiser(coupling, flip_prob=0.1).denoise(noisy, method, generator=g, **options)
        restored[(method, coupling)] = out
        print(f"{method:<6} J = {coupling}: pixel error {pixel_error(out, clean):.4f}")
fig, axes = plt.subplots(3, 6, figsize=(8, 4.2))
best = min(restored, key=lambda k: pixel_error(restored[k], clean))
for c in range(6):
    for r, (name, imgs) in enumerate(
        (("clean", clean), ("noisy", noisy), (str(best), restored[best]))
    ):
        axes[r, c].imshow(imgs[c].numpy(), cmap="gray_r")
        axes[r, c].axis("off")
        if c == 0:
            axes[r, c].set_title(name, loc="left", fontsize=9)
fig.tight_layout()

# %%
# `examples/ising_denoise_digits.py` picks $J$ on validation images and adds
# mean-field inference.
#
# ## 3. RBMs and DBNs on digits
#
# A restricted Boltzmann machine has visible units $v$ and hidden units $h$,
# both binary, and energy $E(v, h) = -v^\top W h - b^\top v - c^\top h$. Summing
# out $h$ gives the free energy $F(v)$, and $p(v) = e^{-F(v)}/Z$. With 20 hidden
# units, $Z$ is an exact sum over $2^{20}$ hidden states, so the held-out
# log-likelihood is exact. `ebmlab.estimators.BernoulliRBM` follows
# scikit-learn's RBM API and trains by CD-1:
x = (load_digits().data / 16.0 > 0.5).astype(np.float64)
train, test = train_test_split(x, test_size=0.2, random_state=0)
t0 = time.perf_counter()
rbm = BernoulliRBM(
    n_components=20, n_iter=8, batch_size=20, learning_rate=0.1, lr_schedule="linear",
    momentum=0.8, weight_decay=1e-4, training="cd-1", random_state=0,
).fit(train)  # fmt: skip
print(f"fitted in {time.perf_counter() - t0:.1f} s; exact log Z = {rbm.log_z_:.3f}")
print(
    f"held-out log-likelihood {rbm.score(test):.3f} nats per image (train {rbm.score(train):.3f})"
)
module = rbm.model_.double()
ais = module.ais_log_z(n_chains=100, n_betas=500, data=torch.as_tensor(train), generator=g)
print(f"RBM AIS estimate of the same log Z: {ais.value:.3f} ± {ais.stderr:.3f} "
      f"(error {ais.value - rbm.log_z_:+.3f})")  # fmt: skip

# %%
# A deep belief network stacks RBMs, each trained on the hidden probabilities of
# the one below (Hinton et al. 2006), and generates top-down. Samples from both:
dbn = DBN([64, 64, 32], generator=g)
dbn.fit(torch.as_tensor(train, dtype=torch.float32), n_epochs=8, batch_size=20,
        learning_rate=0.05, training="cd-1", momentum=0.5, generator=g)  # fmt: skip
rbm_samples = module.sample(8, n_steps=300, generator=g)
dbn_samples = dbn.sample(8, n_gibbs=300, mean=True, generator=g)
fig, axes = plt.subplots(2, 8, figsize=(8, 2.3))
for c in range(8):
    axes[0, c].imshow(rbm_samples[c].reshape(8, 8).numpy(), cmap="gray_r")
    axes[1, c].imshow(dbn_samples[c].reshape(8, 8).numpy(), cmap="gray_r")
    axes[0, c].axis("off")
    axes[1, c].axis("off")
axes[0, 0].set_title("RBM (20 hidden), block Gibbs", loc="left", fontsize=9)
axes[1, 0].set_title("DBN 64-64-32, top-down", loc="left", fontsize=9)
fig.tight_layout()

# %%
# The budget here is 8 epochs; `examples/rbm_digits.py` trains 20 and uses 3,000
# AIS temperatures (the published RBM numbers are in `docs/benchmarks.md`,
# "RBM on digits").
#
# ## 4. Hopfield networks: how many memories fit?
#
# A Hopfield network stores patterns $\xi^\mu \in \{-1, 1\}^N$ as minima of
# $E(s) = -\tfrac12 s^\top W s$ with the Hebbian $W = \tfrac1N\sum_\mu
# \xi^\mu\xi^{\mu\top}$; recall runs $s_i \leftarrow \mathrm{sign}(h_i)$ down
# the energy. Theory (Amit, Gutfreund & Sompolinsky 1985) puts the capacity at
# $P \approx 0.138\,N$ for large $N$. Starting from each stored pattern, the
# fraction recalled with overlap above 0.9, $N = 200$:
n_units = 200
alphas = [0.05, 0.1, 0.13, 0.16, 0.2, 0.25]
fractions = []
for alpha in alphas:
    p = round(alpha * n_units)
    xi = torch.randint(0, 2, (p, n_units), generator=g).float() * 2 - 1
    net = HopfieldNetwork(n_units).store(xi, "hebbian")
    out = net.recall(xi, mode="async", max_sweeps=20, generator=g)
    overlap = (out.states * xi).sum(-1) / n_units
    fractions.append(float((overlap > 0.9).float().mean()))
    print(f"P/N = {alpha:.2f} ({p:>2} patterns): recalled {fractions[-1]:.0%}")
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(alphas, fractions, "o-")
ax.axvline(0.138, color="C3", ls=":", label="0.138 (N = inf)")
ax.set_xlabel("patterns per unit P/N")
ax.set_ylabel("fraction recalled")
ax.legend()
fig.tight_layout()

# %%
# At finite $N$ the breakdown is smeared out and shifted above $0.138\,N$;
# `examples/hopfield_capacity.py` extrapolates it over several $N$ and shows the
# modern (attention) Hopfield network storing far more.
#
# ## 5. Products of experts are sums of energies
#
# Multiplying densities adds energies: $\prod_k p_k(x) \propto
# e^{-\sum_k E_k(x)}$. Each expert can be poor alone and still constrain the
# product sharply (Hinton 2002). Two Gaussian "stripes", one narrow in $x_1$, one
# narrow in $x_2$, multiply to a small blob where they cross. `SumEnergy` is the
# product; its $\log Z$, no longer the sum of the experts', comes by quadrature:
f64 = torch.float64
vertical = Gaussian(
    torch.tensor([1.0, 0.0], dtype=f64), torch.diag(torch.tensor([0.05, 9.0], dtype=f64))
)
horizontal = Gaussian(
    torch.tensor([0.0, -1.0], dtype=f64), torch.diag(torch.tensor([9.0, 0.05], dtype=f64))
)
product = SumEnergy(vertical, horizontal)
lz = log_z(product, bounds=[(-8.0, 8.0)] * 2, resolution=256)
print(f"log Z of the product: {lz.value:.4f} ({lz.method}); "
      f"sum of the experts' log Z: {float(vertical.log_z + horizontal.log_z):.4f}")  # fmt: skip
grid = torch.linspace(-4, 4, 150, dtype=f64)
mesh = torch.stack(torch.meshgrid(grid, grid, indexing="xy"), -1).reshape(-1, 2)
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, (name, e) in zip(axes, (("expert 1", vertical), ("expert 2", horizontal),
                                ("product = sum of energies", product)), strict=True):  # fmt: skip
    with torch.no_grad():
        ax.imshow(
            torch.exp(-e(mesh)).reshape(150, 150).numpy(), origin="lower", extent=(-4, 4, -4, 4)
        )
    ax.set_title(name)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

# %%
# When experts are *learned*, they must be trained jointly: multiplying experts
# trained one at a time counts the same evidence several times.
# `examples/products_of_experts.py` shows it by exact NLL on the eight-Gaussians
# ring, training the product by persistent contrastive divergence.

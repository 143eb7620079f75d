r"""
# The partition function, honestly

Training an energy never needs $Z = \int e^{-E(x)}dx$, but *evaluating* a
density does: a log-likelihood is $-E(x) - \log Z$, and comparing two models by
likelihood means knowing both normalizers. `ebmlab.partition` computes
$\log Z$ four ways and says how far to trust each answer:

| method | when | what you get |
|---|---|---|
| `exact` | discrete, up to about $2^{30}$ states | the sum, to rounding |
| `quadrature` | continuous, 1-3 dimensions | a grid integral with an error estimate |
| `ais` | anything | an estimate with a standard error and an effective sample size |
| `bdmc` | anything, given samples of the target | a bracket `[lower, upper]` |

Every method returns an `Estimate` (`value`, `stderr`, `lower`, `upper`,
`method`, `seconds`, ...), through one call: `log_z(energy, method=...)`. This
page checks each against a closed form.
"""

# %%
# ## Exact: enumeration of a small Ising model
#
# A $4 \times 4$ periodic Ising model at inverse temperature $\beta = 0.4$ has
# $2^{16} = 65{,}536$ states: small enough to sum. Kaufman's (1949) closed form
# gives the same number at any size.
import math

import matplotlib.pyplot as plt
import torch

from ebmlab.energies import Gaussian, GaussianMixture
from ebmlab.lattice import IsingModel, kaufman_log_z
from ebmlab.partition import log_z

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)

small = IsingModel.lattice(4, beta=0.4)
exact = log_z(small, "exact")
print(f"4x4 Ising: enumeration {exact.value:.8f} ({exact.seconds:.2f} s)")
print(f"           Kaufman     {float(kaufman_log_z(4, 4, 0.4)):.8f}")

# %%
# ## Quadrature: a 2-D energy on a grid
#
# In one to three dimensions $Z$ is an integral over a box, computed on a grid.
# The box grows until the mass in its outer band is negligible, and the error is
# estimated by comparing two resolutions. A correlated Gaussian has a closed-form
# $\log Z = \tfrac12\log\det(2\pi\Sigma)$ to check it against:
cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
gauss = Gaussian(torch.tensor([0.5, -1.0], dtype=torch.float64), cov)
truth = 0.5 * math.log(torch.linalg.det(2 * math.pi * cov))
for res in (16, 32, 64, 128):
    q = log_z(gauss, "quadrature", bounds=[(-5.0, 6.0), (-6.0, 5.0)], resolution=res)
    print(
        f"resolution {res:>3}: log Z = {q.value:.8f}, estimated error {q.stderr:.1e}, "
        f"true error {abs(q.value - truth):.1e}"
    )

# %%
# The estimated error is conservative: it bounds the true error, by orders of
# magnitude here, because the grid rule converges much faster on a smooth
# integrand than the comparison of two resolutions assumes. It is reported in
# the `stderr` field.
#
# ## AIS: annealed importance sampling
#
# Above three dimensions, and for discrete models too large to enumerate, $\log Z$
# is estimated. AIS (Neal 2001) starts chains at a tractable base distribution
# $p_0$ with known $Z_0$, anneals through $p_\beta \propto p_0^{1-\beta}
# e^{-\beta E}$ for $\beta$ from 0 to 1 with MCMC moves, and accumulates the
# importance weights $\log w = \sum_t (\beta_{t} - \beta_{t-1})
# (\log p_0(x_t) - \log \tilde p(x_t))$; then $Z = Z_0\,\mathbb{E}[w]$.
#
# The target: a 10-dimensional mixture of three well-separated Gaussians, shifted
# by an energy offset of $-7$, so the true $\log Z$ is exactly $7$.
dim = 10
means = torch.zeros(3, dim, dtype=torch.float64)
means[0, 0], means[1, 0], means[2, 1] = -3.0, 3.0, 4.0
mixture = GaussianMixture(
    torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64), means, torch.tensor([0.3, 0.5, 0.4])
)
offset = 7.0


def target(x: torch.Tensor) -> torch.Tensor:
    """The mixture's energy minus 7: log Z = 7 exactly."""
    return mixture(x) - offset


exact_samples = mixture.sample(2000, generator=g)  # what a data set would be
rows = []
print(f"{'temperatures':>12} {'log Z':>8} {'stderr':>7} {'error':>7} {'ESS':>6} {'seconds':>7}")
for n_temps in (10, 30, 100, 300):
    est = log_z(
        target,
        "ais",
        event_shape=dim,
        data=exact_samples,
        n_chains=256,
        n_temperatures=n_temps,
        generator=g,
    )
    rows.append((n_temps, est))
    print(
        f"{n_temps:>12} {est.value:>8.3f} {est.stderr:>7.3f} {est.value - offset:>+7.3f} "
        f"{est.ess:>6.1f} {est.seconds:>7.2f}"
    )

# %%
# Two things to read in that table. First, the **effective sample size** of the
# importance weights (out of 256 chains): when it is small, a few chains carry
# all the weight and the standard error is itself unreliable. Second, AIS is
# *stochastically a lower bound*: by Jensen's inequality
# $\mathbb{E}[\log \hat Z] \le \log Z$: with too few temperatures the typical
# failure is an estimate that is low by more than its standard error (as at 30
# temperatures above), and the standard error itself does not show it.
#
# ## BDMC: a bracket instead of a point
#
# Bidirectional Monte Carlo (Grosse et al. 2015) runs AIS forward (a stochastic
# lower bound) and in reverse, from exact samples of the target back to the
# base (a stochastic upper bound). The truth lies between; the width of the
# bracket is an honest error bar that does not rely on the weights' variance.
# (With 10 temperatures the reverse run's weights degenerate, and ebmlab says
# so in a `RuntimeWarning`.)
brackets = []
for n_temps in (10, 30, 100, 300):
    b = log_z(
        target,
        "bdmc",
        event_shape=dim,
        data=exact_samples,
        samples=exact_samples[:256],
        n_chains=256,
        n_temperatures=n_temps,
        generator=g,
    )
    brackets.append((n_temps, b))
    inside = b.lower <= offset <= b.upper
    print(
        f"{n_temps:>4} temperatures: [{b.lower:.3f}, {b.upper:.3f}] "
        f"width {b.upper - b.lower:.3f}, contains log Z = 7: {inside}, tight: {b.is_tight}"
    )

fig, ax = plt.subplots(figsize=(6, 3.5))
ts = [t for t, _ in rows]
ax.errorbar(
    ts, [e.value for _, e in rows], yerr=[2 * e.stderr for _, e in rows], fmt="o-",
    label="AIS (± 2 SE)", capsize=3,
)  # fmt: skip
ax.fill_between(
    [t for t, _ in brackets],
    [b.lower for _, b in brackets],
    [b.upper for _, b in brackets],
    alpha=0.3,
    color="C1",
    label="BDMC bracket",
)
ax.axhline(offset, color="k", ls=":", label="true log Z")
ax.set_xscale("log")
ax.set_xlabel("annealing temperatures")
ax.set_ylabel("log Z")
ax.set_title("10-D mixture: AIS and its bracket")
ax.legend()
fig.tight_layout()

# %%
# ## A discrete model too large to enumerate
#
# An $8 \times 8$ Ising model has $2^{64}$ states. AIS with Gibbs sweeps (the
# default for a discrete domain, from the uniform base) against Kaufman's exact
# value:
big = IsingModel.lattice(8, beta=0.4)
est = log_z(big, "ais", n_chains=256, n_temperatures=300, generator=g)
exact_big = float(kaufman_log_z(8, 8, 0.4))
print(f"8x8 Ising: AIS {est.value:.3f} ± {est.stderr:.3f} (ESS {est.ess:.0f}), "
      f"Kaufman {exact_big:.3f}, error {est.value - exact_big:+.3f}")  # fmt: skip

# %%
# ## When to trust an estimate
#
# * Use the exact method whenever it applies; `log_z(energy)` with the default
#   `method="auto"` does (enumeration up to $2^{26}$ states, quadrature in 1-3
#   dimensions, AIS otherwise).
# * An AIS estimate needs a reasonable **ESS** (ebmlab warns below a floor) and
#   should be stable when the number of temperatures doubles.
# * The **BDMC bracket** is the strongest check: when it is narrow, both bounds
#   agree and the answer is known to that width. It needs samples from the
#   target: exact ones (held-out data of a model that fits well are a stand-in,
#   not a guarantee) make the upper bound valid.
# * For a trained RBM, `ebmlab.boltzmann` has the RBM-specific AIS of
#   Salakhutdinov & Murray (2008), used in tutorial 7.
#
# The published error-versus-compute tables (`docs/benchmarks.md`, "Partition
# function") use up to 10,000 temperatures and 1,000 chains; this page stops at
# 300 temperatures to build fast.

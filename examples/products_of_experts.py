"""# Product of experts: four poor models whose product is a good one.

Data: the eight-Gaussians ring. Each expert sees the plane through one
direction ``u_k`` (0, 45, 90 and 135 degrees): a 1-D Gaussian mixture of the
projection ``u_k . x`` times a broad Gaussian across it,

    E_k(x) = -log MoG_k(u_k . x) - log N(u_k_perp . x; 0, s_k^2),

a normalized density on its own, and a poor model of the ring (stripes). The
product ``p(x) ~ prod_k p_k(x)`` is an energy sum (``ebmlab.energies.SumEnergy``)
whose stripes intersect at the eight modes -- but only if the experts are
trained *jointly*: multiplying experts trained separately counts the same
evidence four times. The script compares, by exact held-out negative
log-likelihood (experts alone: closed form; products: log Z by quadrature):

1. each expert trained alone by maximum likelihood;
2. the product of those separately trained experts;
3. the product trained jointly by persistent contrastive divergence with MALA
   negatives (``ebmlab.samplers.MALA``), started from (2).

`--quick` (the documentation site runs it): 100 updates per expert alone, 40 joint
updates with 500 chains, 50 sampling steps; the full run: 200, 150 with 1,000 chains, 200.

Run:

```
python examples/products_of_experts.py [--quick] [--seed 0]
```
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from torch import Tensor, nn

from ebmlab.data import make_toy
from ebmlab.energies import Energy, SumEnergy
from ebmlab.partition import quadrature_log_z
from ebmlab.samplers import MALA, run

LOG_2PI = math.log(2 * math.pi)


class ProjectionExpert(Energy):
    """``-log [MoG(u . x) N(u_perp . x; 0, s^2)]``: normalized, log Z = 0."""

    def __init__(self, angle: float, n_components: int = 7) -> None:
        super().__init__(2)
        self.register_buffer("u", torch.tensor([math.cos(angle), math.sin(angle)]))
        self.register_buffer("u_perp", torch.tensor([-math.sin(angle), math.cos(angle)]))
        self.logits = nn.Parameter(torch.zeros(n_components))
        self.means = nn.Parameter(torch.linspace(-2.4, 2.4, n_components))
        self.log_std = nn.Parameter(torch.full((n_components,), math.log(0.3)))
        self.log_s = nn.Parameter(torch.tensor(math.log(1.5)))

    def forward(self, x: Tensor) -> Tensor:
        a, b = x @ self.u, x @ self.u_perp
        z = (a[:, None] - self.means) / self.log_std.exp()
        log_comp = -0.5 * z**2 - self.log_std - 0.5 * LOG_2PI
        log_mog = torch.logsumexp(torch.log_softmax(self.logits, 0) + log_comp, -1)
        log_perp = -0.5 * (b / self.log_s.exp()) ** 2 - self.log_s - 0.5 * LOG_2PI
        return -(log_mog + log_perp)


def fit_alone(expert: ProjectionExpert, data: Tensor, n_steps: int) -> None:
    """Exact maximum likelihood (the expert is normalized)."""
    opt = torch.optim.Adam(expert.parameters(), lr=0.05)
    for _ in range(n_steps):
        loss = expert(data).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def heldout_nll(
    energy: Energy, test: Tensor, bounds: tuple[float, ...], normalized: bool
) -> float:
    with torch.no_grad():
        e = float(energy(test).mean())
    if normalized:
        return e
    box = [(bounds[0], bounds[1]), (bounds[2], bounds[3])]
    return e + float(quadrature_log_z(energy, box, 256).log_z)


def fit_jointly(
    poe: SumEnergy,
    data: Tensor,
    bounds: tuple[float, ...],
    n_updates: int,
    n_chains: int,
    g: torch.Generator,
) -> None:
    """Persistent CD: chains start uniform on the box and move by MALA."""
    lo = torch.tensor([bounds[0], bounds[2]])
    hi = torch.tensor([bounds[1], bounds[3]])
    chains = lo + (hi - lo) * torch.rand(n_chains, 2, generator=g)
    sampler = MALA(step_size=0.05)
    opt = torch.optim.Adam(poe.parameters(), lr=0.01)
    for _ in range(n_updates):
        idx = torch.randint(data.shape[0], (500,), generator=g)
        # Refresh a few chains from the box so every mode of the model, even a
        # spurious one far from the data, keeps being visited.
        fresh = torch.rand(chains.shape[0], generator=g) < 0.02
        chains[fresh] = lo + (hi - lo) * torch.rand(int(fresh.sum()), 2, generator=g)
        chains = run(sampler, poe, chains, 10, generator=g).state.x.detach()
        loss = poe(data[idx]).mean() - poe(chains).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description="Product of experts: four poor models whose product is a good one."
    )
    parser.add_argument("--quick", action="store_true", help="fewer updates (a few seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)  # parameter initialization of the experts (script only)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    toy = make_toy("eight_gaussians")
    train = toy.sample(5000, generator=g)
    test = toy.sample(5000, generator=g)
    bounds = toy.bounds
    entropy = float(toy.entropy()[0])

    experts = [ProjectionExpert(k * math.pi / 4) for k in range(4)]
    alone = []
    for expert in experts:
        fit_alone(expert, train, 100 if args.quick else 200)
        alone.append(heldout_nll(expert, test, bounds, normalized=True))
    poe = SumEnergy(*experts)
    naive = heldout_nll(poe, test, bounds, normalized=False)
    if args.quick:
        fit_jointly(poe, train, bounds, n_updates=40, n_chains=500, g=g)
    else:
        fit_jointly(poe, train, bounds, n_updates=150, n_chains=1000, g=g)
    joint = heldout_nll(poe, test, bounds, normalized=False)

    print("held-out negative log-likelihood (nats per point, exact; lower is better)")
    for k, nll in enumerate(alone):
        print(f"  expert {k} alone ({45 * k:3d} deg)         {nll:7.3f}")
    print(f"  product of separately trained experts {naive:7.3f}")
    print(f"  product trained jointly (PCD + MALA)  {joint:7.3f}")
    print(f"  the data's entropy (the best possible) {entropy:7.3f}")
    n_steps = 50 if args.quick else 200
    samples = run(MALA(0.05), poe, test[:1000].clone(), n_steps, generator=g).state.x
    radius = samples.norm(dim=-1)
    print(
        f"samples of the joint product: radius {radius.mean():.2f} +- {radius.std():.2f} "
        f"(data: 2.00 +- 0.25); time {time.perf_counter() - t0:.1f} s"
    )
    return {"best_alone": min(alone), "naive": naive, "joint": joint, "entropy": entropy}


if __name__ == "__main__":
    main()

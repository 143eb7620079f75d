"""# Shaping an energy by regularization: sparse coding with an L1 latent penalty.

E(y) = min_z 1/2 |y - D z|^2 + lambda |z|_1, with D an overcomplete dictionary
(32 unit-norm atoms in R^16). The latent code z is found by ISTA inside the
energy. Without the penalty (lambda = 0) any y is reconstructed exactly by
some z: the energy is 0 everywhere, a collapsed energy, and training changes
nothing. The L1 penalty limits the volume of low energy to y's that have a
sparse code, so the energy loss alone (no negative samples) learns a
dictionary whose low-energy region hugs the data.

Data: sparse combinations (about 2 of 32 atoms) of a hidden dictionary. The
table shows the mean energy of held-out data and of dense random points with
the same norm, the share of those random points whose energy is below the
data's median energy (for the flat energy, only rounding noise decides), and how many
hidden atoms have a learned atom with cosine similarity above 0.95.

Run:

```
.venv/bin/python examples/shape_energy_regularized.py   (a few seconds)
```
"""

from __future__ import annotations

import torch

from ebmlab.energies import SparseCodingEnergy
from ebmlab.objectives import fit_energy_loss

torch.set_num_threads(1)  # small tensors: one thread is fastest
g = torch.Generator().manual_seed(0)
dim, n_atoms = 16, 32
hidden = torch.randn(dim, n_atoms, generator=g)
hidden = hidden / hidden.norm(dim=0)


def sparse_data(n: int) -> torch.Tensor:
    active = torch.rand(n, n_atoms, generator=g) < 2 / n_atoms
    return (active * (1 + torch.rand(n, n_atoms, generator=g))) @ hidden.T


train, test = sparse_data(4000), sparse_data(1000)
test = test[test.norm(dim=1) > 0]
dense = torch.randn(test.shape[0], dim, generator=g)
dense = dense / dense.norm(dim=1, keepdim=True) * test.norm(dim=1, keepdim=True)

print(f"{'l1':>5} {'E(data)':>9} {'E(random)':>10} {'random below median':>20} {'atoms':>6}")
for l1 in (0.0, 0.3):
    energy = SparseCodingEnergy(dim, n_atoms, l1=l1, n_steps=60, generator=g)
    fit_energy_loss(energy, train, n_steps=250, batch_size=256, lr=0.02, generator=g)
    with torch.no_grad():
        e_data, e_rand = energy(test), energy(dense)
        cos = (hidden.T @ energy.dictionary()).abs().max(1).values
    below = float((e_rand <= e_data.median()).float().mean())
    recovered = f"{int((cos > 0.95).sum())}/{n_atoms}"
    print(
        f"{l1:>5} {float(e_data.mean()):>9.4f} {float(e_rand.mean()):>10.4f} {below:>20.1%} "
        f"{recovered:>6}"
    )

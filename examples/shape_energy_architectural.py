"""# Shaping an energy by architecture: the volume of low energy is fixed by design.

When no setting of the weights can give low energy to more than a fixed
volume, pushing the data's energy down (the plain energy loss, no negative
samples) is enough: the rest of the space stays high. Two classic examples:

- PCA as an energy, E(y) = |y - Q Q^T y|^2 with orthonormal Q (D x k): zero
  only on a k-dimensional subspace, whatever Q is;
- K-means as an energy, E(y) = min_k |y - w_k|^2: low only near K points.

Both are fitted here by the energy loss alone, on data in R^3 near a plane
(PCA) and on eight Gaussian clusters in the plane (K-means). The table shows
the mean energy of the data, of uniform random points in the data's box, and
the share of that box with energy below the data's 95th percentile: small, and
it cannot grow by training. For contrast, an MLP energy trained the same way
is pushed down everywhere (its energies run off to minus infinity).

Run:

```
.venv/bin/python examples/shape_energy_architectural.py   (a few seconds)
```
"""

from __future__ import annotations

import torch

from ebmlab.data import make_toy
from ebmlab.energies import KMeansEnergy, MLPEnergy, PCAEnergy
from ebmlab.objectives import fit_energy_loss

torch.set_num_threads(1)  # small tensors: one thread is fastest
g = torch.Generator().manual_seed(0)


def report(name: str, energy: torch.nn.Module, data: torch.Tensor) -> None:
    low, high = data.amin(0), data.amax(0)
    box = low + (high - low) * torch.rand(20_000, data.shape[1], generator=g)
    with torch.no_grad():
        e_data, e_box = energy(data), energy(box)
    threshold = torch.quantile(e_data, 0.95)
    share = float((e_box <= threshold).float().mean())
    print(f"{name:<10} {float(e_data.mean()):>12.4g} {float(e_box.mean()):>12.4g} {share:>18.1%}")


print(f"{'energy':<10} {'E(data)':>12} {'E(random)':>12} {'low-energy share':>18}")

# PCA: a noisy plane in R^3.
basis, _ = torch.linalg.qr(torch.randn(3, 2, generator=g))
noise = 0.05 * torch.randn(2000, 3, generator=g)
plane = (2 * torch.randn(2000, 2, generator=g)) @ basis.T + noise
pca = PCAEnergy(3, 2, generator=g)
fit_energy_loss(pca, plane, n_steps=300, lr=0.05, generator=g)
report("pca", pca, plane)
normal = torch.linalg.cross(basis[:, 0], basis[:, 1])
learned = torch.linalg.cross(*pca.basis().detach().T)
angle = torch.rad2deg(torch.arccos(learned.dot(normal).abs().clamp(max=1.0)))
print(f"  angle between the learned and the true plane: {float(angle):.2f} degrees")

# K-means: eight Gaussian clusters; prototypes started at 8 data points far
# apart from each other (farthest-point seeding).
blobs = make_toy("eight_gaussians", std=0.1).sample(4000, seed=0).float()
chosen = [0]
for _ in range(7):
    chosen.append(int(torch.cdist(blobs, blobs[chosen]).min(1).values.argmax()))
start = blobs[chosen]
kmeans = KMeansEnergy(2, 8, init=start)
fit_energy_loss(kmeans, blobs, n_steps=500, lr=0.05, generator=g)
report("k-means", kmeans, blobs)

# The same energy loss on an unconstrained MLP energy: nothing holds it up.
mlp = MLPEnergy(2, hidden=(32, 32))
fit_energy_loss(mlp, blobs, n_steps=300, lr=1e-2, generator=g)
report("mlp", mlp, blobs)

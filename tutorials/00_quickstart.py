"""# Quickstart: fit and sample a 2-D energy

A neural energy `E(x)` (low energy = probable) fitted to the two-moons toy by
persistent contrastive divergence, then sampled with MALA. A small budget
(300 updates) so that the page builds in seconds; the README's ten lines use
5,000 updates on eight Gaussians.
"""

# %%
import matplotlib.pyplot as plt
import torch

import ebmlab
from ebmlab.data import make_toy
from ebmlab.energies import MLPEnergy
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.samplers import MALA
from ebmlab.train import TrainSettings, fit

torch.manual_seed(0)
toy = make_toy("two_moons")
data = toy.sample(5000, seed=0)
energy = MLPEnergy(2, hidden=(32, 32), base_scale=4.0)  # E: (N, 2) -> (N,)
box = torch.tensor([toy.bounds[0], toy.bounds[2]]), torch.tensor([toy.bounds[1], toy.bounds[3]])
cd = ContrastiveDivergence(
    MALA(0.02),
    n_steps=10,
    mode="pcd",
    init_fn=lambda n, g: box[0] + (box[1] - box[0]) * torch.rand(n, 2, generator=g),
)
settings = TrainSettings(steps=300, batch_size=256, lr=5e-3)
fit(energy, data, cd, settings, state=cd.init_state(256), progress=False)

# %%
# Samples: 500 MALA chains started from noise.
x = ebmlab.sample(energy, torch.randn(500, 2), "mala", n_steps=300, step_size=0.02)
plt.scatter(data[:500, 0], data[:500, 1], s=3, label="data")
plt.scatter(x[:, 0], x[:, 1], s=3, label="samples")
plt.legend()
plt.show()

"""Fit an energy to two moons by persistent contrastive divergence, then sample it.

Run: .venv/bin/python examples/fit_two_moons.py  (about a minute on 2 CPU cores)
Writes two_moons_samples.png and two_moons_density.png.
"""

from __future__ import annotations

import torch

import ebmlab
from ebmlab.data import make_toy
from ebmlab.energies import MLPEnergy
from ebmlab.evaluation import mmd
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.plotting import plot_density, plot_samples
from ebmlab.samplers import MALA
from ebmlab.train import TrainSettings, fit

torch.set_num_threads(1)  # small matrices: one thread is fastest
toy = make_toy("two_moons")
xmin, xmax, ymin, ymax = toy.bounds
data = toy.sample(20_000, seed=0)
held_out = toy.sample(2_000, seed=1)


def uniform_box(n: int, g: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(n, 2, generator=g)
    return torch.stack([xmin + (xmax - xmin) * u[:, 0], ymin + (ymax - ymin) * u[:, 1]], 1)


torch.manual_seed(0)
energy = MLPEnergy(2, hidden=(64, 64, 64), base_scale=4.0)
cd = ContrastiveDivergence(MALA(0.01), n_steps=10, mode="pcd", init_fn=uniform_box)
buffer = cd.init_state(512, generator=torch.Generator().manual_seed(1))
fit(energy, data, cd, TrainSettings(steps=3000, batch_size=512, lr=5e-3), state=buffer)

# Continue the persistent chains for a while to get samples.
samples = ebmlab.sample(energy, buffer.buffer, "mala", n_steps=300, step_size=0.01)
print(f"MMD^2 between samples and held-out data: {mmd(samples, held_out[:512]):.4f}")
plot_samples(samples, held_out, "two_moons_samples.png")
plot_density(energy, [(xmin, xmax), (ymin, ymax)], "two_moons_density.png")
print("wrote two_moons_samples.png and two_moons_density.png")

"""# Fit an energy to two moons by persistent contrastive divergence, then sample it.

An MLP energy (three hidden layers of 64, a Gaussian reference term of scale 4)
is fitted by persistent CD with MALA negatives: 3,000 updates of 512 points
(about two minutes on 2 CPU cores). `--quick` runs 600 updates (what the
documentation site shows: the moons are recognisable but rougher). The script
writes `two_moons_samples.png` and `two_moons_density.png` into `--out-dir`
(default: the current directory) and shows both.

Run:

```
.venv/bin/python examples/fit_two_moons.py [--quick] [--out-dir DIR]
```
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import ebmlab
from ebmlab.data import make_toy
from ebmlab.energies import MLPEnergy
from ebmlab.evaluation import mmd
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.plotting import plot_density, plot_samples
from ebmlab.samplers import MALA
from ebmlab.train import TrainSettings, fit

parser = argparse.ArgumentParser(
    description="Fit an energy to two moons by persistent contrastive divergence, then sample it."
)
parser.add_argument("--quick", action="store_true", help="600 updates instead of 3000")
parser.add_argument("--out-dir", default=".", help="where the two PNG files go")
args = parser.parse_args()
steps = 600 if args.quick else 3000

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
fit(energy, data, cd, TrainSettings(steps=steps, batch_size=512, lr=5e-3), state=buffer)

# Continue the persistent chains for a while to get samples.
samples = ebmlab.sample(energy, buffer.buffer, "mala", n_steps=300, step_size=0.01)
print(f"{steps} updates; MMD^2 to held-out data: {mmd(samples, held_out[:512]):.4f}")
out = Path(args.out_dir)
paths = [
    plot_samples(samples, held_out, out / "two_moons_samples.png"),
    plot_density(energy, [(xmin, xmax), (ymin, ymax)], out / "two_moons_density.png"),
]
print("wrote", ", ".join(str(p) for p in paths))
fig, axes = plt.subplots(2, 1, figsize=(9, 9))
for ax, path in zip(axes, paths, strict=True):
    ax.imshow(plt.imread(path))
    ax.axis("off")
plt.show()

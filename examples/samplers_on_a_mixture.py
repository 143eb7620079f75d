"""# Compare Langevin, MALA and HMC on a Gaussian mixture with a known answer.

Run:

```
.venv/bin/python examples/samplers_on_a_mixture.py
```

Prints each sampler's acceptance, its estimate of the mean, and the exact mean.
"""

from __future__ import annotations

import torch

from ebmlab.energies import GaussianMixture
from ebmlab.samplers import HMC, MALA, Langevin, run

target = GaussianMixture(
    torch.tensor([0.3, 0.7]), torch.tensor([[-1.0, 0.0], [1.0, 0.5]]), torch.tensor([0.2, 0.3])
)
exact_mean = (target.log_weights.exp()[:, None] * target.means).sum(0)
g = torch.Generator().manual_seed(0)
start = target.sample(2000, generator=g)  # start at exact samples: no burn-in needed

for sampler in (Langevin(0.01), MALA(0.1), HMC(0.1, n_leapfrog=10)):
    out = run(sampler, target, start, 200, generator=g, thin=10)
    assert out.samples is not None
    mean = out.samples.reshape(-1, 2).mean(0)
    print(
        f"{sampler!r:60s} acceptance {float(out.acceptance_rate.mean()):.2f} "
        f"mean {mean.tolist()} (exact {exact_mean.tolist()})"
    )

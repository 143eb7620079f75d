"""# An RBM on binarized digits: exact log-likelihood, AIS, and samples.

Fits ``ebmlab.estimators.BernoulliRBM`` (20 hidden units, CD-1 with momentum and
a linearly decaying learning rate) to the 8x8 digits bundled with
scikit-learn, pixels binarized at 0.5 (value > 8 of 16). With 20 hidden units
``log Z`` is exact (a sum over the 2^20 hidden states), so ``score_samples``
is the exact held-out log-likelihood; the script then estimates the same
``log Z`` by the RBM annealed importance sampling of Salakhutdinov & Murray
(2008), as one would for a larger RBM, and draws digits by block Gibbs
sampling.

`--quick` (the documentation site runs it): 5 epochs, AIS with 100 chains x 500
temperatures, 200 Gibbs steps; the full run: 20 epochs, 500 x 3,000, 1,000 steps.

Run:

```
python examples/rbm_digits.py [--quick] [--out samples.png]
```
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ebmlab.estimators import BernoulliRBM


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(
        description="An RBM on binarized digits: exact log-likelihood, AIS, and samples."
    )
    parser.add_argument("--quick", action="store_true", help="fewer epochs and AIS steps")
    parser.add_argument("--out", default=None, help="write a PNG of Gibbs samples here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small matrices: one thread is fastest
    t0 = time.perf_counter()

    x = (load_digits().data / 16.0 > 0.5).astype(np.float64)
    train, test = train_test_split(x, test_size=0.2, random_state=0)
    rbm = BernoulliRBM(
        n_components=20,
        n_iter=5 if args.quick else 20,
        batch_size=20,
        learning_rate=0.1,
        lr_schedule="linear",
        momentum=0.8,
        weight_decay=1e-4,
        training="cd-1",
        random_state=0,
    ).fit(train)
    held_out = rbm.score(test)
    print(f"exact log Z = {rbm.log_z_:.4f} ({rbm.log_z_estimate_.method})")
    print(f"held-out log-likelihood: {held_out:.3f} nats per image (train {rbm.score(train):.3f})")

    module = rbm.model_.double()
    g = torch.Generator().manual_seed(0)
    n_chains, n_betas = (100, 500) if args.quick else (500, 3000)
    ais = module.ais_log_z(
        n_chains=n_chains, n_betas=n_betas, data=torch.as_tensor(train), generator=g
    )
    print(f"AIS: {ais}; AIS - exact = {ais.value - rbm.log_z_:+.4f} nats")

    samples = module.sample(16, n_steps=200 if args.quick else 1000, generator=g)
    digit = samples[0].reshape(8, 8)
    print("a sample after block Gibbs sampling:")
    for row in digit:
        print("  " + "".join("#" if float(p) > 0.5 else "." for p in row))
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 8, figsize=(8, 2))
        for ax, s in zip(axes.flat, samples, strict=True):
            ax.imshow(s.reshape(8, 8).numpy(), cmap="gray_r")
            ax.axis("off")
        fig.savefig(args.out, dpi=100, bbox_inches="tight")
        print(f"wrote {args.out}")
    print(f"time {time.perf_counter() - t0:.1f} s")
    return {"heldout": held_out, "ais_error": ais.value - rbm.log_z_, "ais_stderr": ais.stderr}


if __name__ == "__main__":
    main()

"""Time one full default JEM fit on mnist5k: wall clock, CPU time and images per second.

``EnergyClassifier(backbone="conv", image_shape=(1, 28, 28))`` with its defaults, on the
4,000 training images of the stratified 80/20 split of seed 0 (the split of
``benchmarks/images.py``); prints the test accuracy too. Run on an idle machine::

    python benchmarks/jem_fit_time.py
"""

from __future__ import annotations

import time

import torch

from ebmlab.data.images import load_images, stratified_split
from ebmlab.estimators import EnergyClassifier


def main() -> None:
    data = load_images("builtin:mnist5k")
    assert data.y is not None
    x = ((data.x.reshape(data.x.shape[0], -1).double() + 1) / 2).numpy()
    y = data.y.numpy()
    tr_t, te_t = stratified_split(x.shape[0], data.y, 0.2, 0)
    tr, te = tr_t.numpy(), te_t.numpy()
    model = EnergyClassifier(backbone="conv", image_shape=(1, 28, 28), random_state=0)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(x[tr], y[tr])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    seen = len(tr) * model.n_epochs_
    acc = float((model.predict(x[te]) == y[te]).mean())
    print(
        f"torch threads {torch.get_num_threads()}; {len(tr)} images x {model.n_epochs_} passes; "
        f"wall {wall:.1f} s; CPU {cpu:.1f} s; {seen / wall:.0f} images/s; test accuracy {acc:.4f}"
    )


if __name__ == "__main__":
    main()

"""Held-out-class OOD of EnergyClassifier settings on validation splits (never test rows).

For each seed: the stratified 4,000 training images of mnist5k (seed's split, as in
``benchmarks/images.py``) are split again 80/20 (``train_test_split``, stratified,
``random_state=seed``); a fit on the 80%'s digits 0-4; AUROC of ``score_samples`` and of
the maximum softmax probability with which validation digits 0-4 rank above 5-9. Usage::

    python benchmarks/_jem_heldout_validation.py '{"generative_weight": 1.0}'
    python benchmarks/_jem_heldout_validation.py '{"generative_weight": 0.0, "energy_reg": 0.0}'

With a second argument ``all`` the fit is on all ten digits of the 80% instead, and the
validation accuracy, ECE and the AUROCs against uniform noise and inverted digits are
printed (the other targets of the benchmark, also on validation rows only)::

    python benchmarks/_jem_heldout_validation.py '{"nda_weight": 0.3}' all
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from ebmlab.data.images import load_images, stratified_split
from ebmlab.estimators import EnergyClassifier


def _auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    labels = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    return float(roc_auc_score(labels, np.r_[inside, outside]))


def main() -> None:
    torch.set_num_threads(1)
    settings = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    every_class = len(sys.argv) > 2 and sys.argv[2] == "all"
    data = load_images("builtin:mnist5k")
    assert data.y is not None
    x = ((data.x.reshape(data.x.shape[0], -1).double() + 1) / 2).numpy()
    y = data.y.numpy()
    for seed in (0, 1, 2):
        tr = stratified_split(x.shape[0], data.y, 0.2, seed)[0].numpy()
        fit, val = train_test_split(tr, test_size=0.2, stratify=y[tr], random_state=seed)
        t0 = time.process_time()
        if every_class:
            model = EnergyClassifier(
                backbone="conv", image_shape=(1, 28, 28), random_state=seed, **settings
            ).fit(x[fit], y[fit])
            rng = np.random.RandomState(10_000 + seed)
            s_val = model.score_samples(x[val])
            full = {
                "val accuracy": float(model.score(x[val], y[val])),
                "val ECE": model.calibration_error(x[val], y[val]),
                "confidence - accuracy": float(
                    model.predict_proba(x[val]).max(1).mean() - model.score(x[val], y[val])
                ),
                "AUROC noise": _auroc(s_val, model.score_samples(rng.rand(len(val), x.shape[1]))),
                "AUROC inverted": _auroc(s_val, model.score_samples(1.0 - x[val])),
                "fit CPU s": time.process_time() - t0,
            }
            print(seed, "all", settings, {k: round(v, 4) for k, v in full.items()}, flush=True)
            continue
        keep = fit[y[fit] < 5]
        v_in, v_out = x[val[y[val] < 5]], x[val[y[val] >= 5]]
        model = EnergyClassifier(
            backbone="conv", image_shape=(1, 28, 28), random_state=seed, **settings
        ).fit(x[keep], y[keep])
        row = {
            "score_samples": _auroc(model.score_samples(v_in), model.score_samples(v_out)),
            "max softmax": _auroc(
                model.predict_proba(v_in).max(1), model.predict_proba(v_out).max(1)
            ),
            "val accuracy 0-4": float(model.score(v_in, y[val[y[val] < 5]])),
            "val ECE 0-4": model.calibration_error(v_in, y[val[y[val] < 5]]),
            "fit CPU s": time.process_time() - t0,
        }
        print(seed, settings, {k: round(v, 3) for k, v in row.items()}, flush=True)


if __name__ == "__main__":
    main()

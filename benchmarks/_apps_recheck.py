"""Re-fit ``EnergyClassifier`` (defaults) on the digits splits of ``_apps_classify.py`` and
compare each seed's figures with a recorded run, value by value.

The baselines of that benchmark are scikit-learn's and do not change with ebmlab, so an
EnergyClassifier that reproduces the recorded per-seed figures exactly reproduces the table.

Usage::

    python benchmarks/_apps_recheck.py SEED [RECORDED.json]   # one process per seed
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _apps_classify as apps
from ebmlab.estimators import EnergyClassifier

RECORDED = "benchmarks/results/applications_classification_one_loop.json"


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    seed = int(argv[0])
    recorded = json.loads(Path(argv[1] if len(argv) > 1 else RECORDED).read_text())
    Xtr, Xte, ytr, yte = apps._data(seed, False)
    t0, c0 = time.perf_counter(), time.process_time()
    model = EnergyClassifier(random_state=seed).fit(Xtr, ytr)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    proba, s_in = model.predict_proba(Xte), model.score_samples(Xte)
    row = {
        "accuracy": float(np.mean(proba.argmax(1) == yte)),
        "ece": apps.ece(proba, yte),
        "nll": float(-np.mean(np.log(np.clip(proba[np.arange(len(yte)), yte], 1e-12, 1)))),
    }
    for kind, Z in apps._ood(Xte, seed).items():
        row[f"auroc {kind}"] = apps._auroc(s_in, model.score_samples(Z))
    old = recorded["per_seed"][seed]["EnergyClassifier"]
    rows = {k: (v, old[k], v == old[k]) for k, v in row.items()}
    print(
        "CHECK", json.dumps({"seed": seed, "fit_seconds": secs, "cpu_seconds": cpu, "rows": rows})
    )


if __name__ == "__main__":
    main(sys.argv[1:])

"""How much of an ECE difference is measurement noise: paired bootstraps, Brier score.

Used by ``benchmarks/images.py --part classification``. With 1,000 test rows and ~96%
accuracy, the 15-bin ECE of a *perfectly* calibrated classifier is not 0 (its bins hold few
rows, whose accuracies scatter around their confidences: the floor,
``ebmlab.estimators.classifier.ece_floor``), and the ECE difference of two models scored on
the same rows scatters too: :func:`paired_ece_bootstrap` resamples the rows to measure it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ebmlab.estimators.classifier import expected_calibration_error


def paired_ece_bootstrap(proba_a: Any, proba_b: Any, y: Any, n_boot: int, seed: int) -> np.ndarray:
    """ECE(a) - ECE(b) on ``n_boot`` resamples (with replacement) of the same test rows.

    Arguments:
        proba_a, proba_b: Class probabilities of two models, shape ``(n, k)``.
        y: True class indices, shape ``(n,)``.
        n_boot: Resamples.
        seed: Seed of the resampling.

    Returns:
        The differences, shape ``(n_boot,)``.
    """
    pa, pb, yy = np.asarray(proba_a), np.asarray(proba_b), np.asarray(y)
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for b in range(n_boot):
        i = rng.integers(0, yy.shape[0], yy.shape[0])
        out[b] = expected_calibration_error(pa[i], yy[i]) - expected_calibration_error(
            pb[i], yy[i]
        )
    return out


def brier(proba: Any, y: Any) -> float:
    """Multiclass Brier score: mean over rows of ``sum_k (p_k - [y = k])^2``."""
    p = np.asarray(proba, dtype=np.float64)
    onehot = np.eye(p.shape[1])[np.asarray(y)]
    return float(((p - onehot) ** 2).sum(1).mean())

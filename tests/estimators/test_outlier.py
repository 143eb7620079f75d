"""EnergyOutlierDetector: scikit-learn's checks, detection, threshold, reproducibility."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ebmlab.estimators import EnergyOutlierDetector


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread is fastest, and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@parametrize_with_checks([EnergyOutlierDetector(hidden=(8,), n_steps=10, random_state=0)])
def test_sklearn_compatible(estimator, check):
    # Two threads: multi-threaded matrix products split rows differently by batch size,
    # which check_methods_subset_invariance would catch if scores depended on the batch.
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        check(estimator)
    finally:
        torch.set_num_threads(n)


def test_scores_do_not_depend_on_the_batch():
    """A row's score is the same alone, in small batches and in the full set. float64
    scoring leaves differences of a few ulp (~1e-15 here); float32 showed ~5e-7."""
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        X = np.random.RandomState(0).randn(300, 5)
        det = EnergyOutlierDetector(hidden=(64, 64), n_steps=10, random_state=0).fit(X)
        full = det.decision_function(X)
        for size in (1, 7, 100):
            parts = [det.decision_function(X[i : i + size]) for i in range(0, len(X), size)]
            np.testing.assert_allclose(np.concatenate(parts), full, rtol=0, atol=1e-10)
    finally:
        torch.set_num_threads(n)


def _ring(n: int, seed: int) -> np.ndarray:
    """Points near a circle of radius 3 (a shape a Gaussian alone cannot hold)."""
    rng = np.random.RandomState(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = 3.0 + 0.2 * rng.randn(n)
    return np.c_[radius * np.cos(angle), radius * np.sin(angle)]


def test_detects_the_hole_of_a_ring():
    X = _ring(600, 0)
    det = EnergyOutlierDetector(hidden=(32, 32), random_state=0).fit(X)
    inliers = _ring(300, 1)
    rng = np.random.RandomState(2)
    centre = 0.8 * rng.randn(300, 2)  # inside the ring: within the Gaussian's bulk
    angle = rng.uniform(0, 2 * np.pi, 300)
    far = rng.uniform(6, 10, 300)[:, None] * np.c_[np.cos(angle), np.sin(angle)]
    scores_in = det.score_samples(inliers)
    assert (
        roc_auc_score(
            np.r_[np.zeros(300), np.ones(300)], -np.r_[scores_in, det.score_samples(far)]
        )
        > 0.99
    )
    # The neural correction learns the hole that the Gaussian reference misses.
    auc_hole = roc_auc_score(
        np.r_[np.zeros(300), np.ones(300)], -np.r_[scores_in, det.score_samples(centre)]
    )
    assert auc_hole > 0.85, auc_hole


def test_threshold_matches_contamination_and_labels():
    X = _ring(500, 3)
    det = EnergyOutlierDetector(hidden=(16,), n_steps=50, contamination=0.2, random_state=0)
    labels = det.fit_predict(X)
    assert set(np.unique(labels)) <= {-1, 1}
    # offset_ is the 20% quantile of the training scores: 100 of 500 rows flagged (+-1 tie).
    assert abs(np.sum(labels == -1) - 100) <= 1
    d = det.decision_function(X)
    assert np.allclose(d, det.score_samples(X) - det.offset_)
    assert np.array_equal(labels, np.where(d < 0, -1, 1))
    assert det.energy_threshold_ == -det.offset_
    with pytest.raises(ValueError, match=r"contamination must be a number in \(0, 0.5\]"):
        EnergyOutlierDetector(contamination=0.7).fit(X)


def test_same_seed_same_scores_numpy_and_pandas():
    pd = pytest.importorskip("pandas")
    X = _ring(200, 4)
    kw = {"hidden": (16,), "n_steps": 30}
    a = EnergyOutlierDetector(**kw, random_state=5).fit(X).score_samples(X)
    df = pd.DataFrame(X, columns=["a", "b"])
    b = EnergyOutlierDetector(**kw, random_state=5).fit(df).score_samples(df)
    c = EnergyOutlierDetector(**kw, random_state=6).fit(X).score_samples(X)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device_parameter(device):
    X = _ring(100, 6)
    det = EnergyOutlierDetector(hidden=(8,), n_steps=5, device=device, random_state=0).fit(X)
    assert det.predict(X).shape == (100,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_close_scores():
    X = _ring(200, 7)
    kw = {"hidden": (16,), "n_steps": 30, "random_state": 0}
    cpu = EnergyOutlierDetector(**kw).fit(X).score_samples(X)
    gpu = EnergyOutlierDetector(**kw, device="cuda").fit(X).score_samples(X)
    assert np.corrcoef(cpu, gpu)[0, 1] > 0.99


def test_pipeline_and_grid_search():
    X = _ring(200, 8)
    pipe = make_pipeline(
        StandardScaler(), EnergyOutlierDetector(hidden=(8,), n_steps=10, random_state=0)
    )
    assert pipe.fit_predict(X).shape == (200,)
    assert pipe.decision_function(X[:3]).shape == (3,)
    y = np.ones(200)
    y[:20] = -1  # GridSearchCV needs a score: accuracy of the +1/-1 labels
    grid = GridSearchCV(
        EnergyOutlierDetector(hidden=(8,), n_steps=10, random_state=0),
        {"contamination": [0.1, 0.3]},
        scoring="accuracy",
        cv=2,
    ).fit(X, y)
    assert grid.best_params_["contamination"] in (0.1, 0.3)
    assert grid.predict(X).shape == (200,)

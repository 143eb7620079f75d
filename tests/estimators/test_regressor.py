"""EnergyRegressor: scikit-learn's estimator checks, multimodal answers, reproducibility."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from ebmlab.estimators import EnergyRegressor


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread is fastest, and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@parametrize_with_checks(
    [EnergyRegressor(hidden=(16, 16), n_steps=50, n_infer_steps=30, random_state=0)]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _two_branches(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    x = rng.uniform(0.0, 1.0, n)
    return x[:, None], rng.choice([-1.0, 1.0], n) * np.sqrt(x) + 0.03 * rng.randn(n)


@pytest.fixture(scope="module")
def fitted_sqrt() -> EnergyRegressor:
    X, y = _two_branches(1500, 0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return EnergyRegressor((32, 32), n_steps=200, n_restarts=12, random_state=0).fit(X, y)
    finally:
        torch.set_num_threads(n)


def test_recovers_both_branches_of_y_squared_equals_x(fitted_sqrt):
    x = np.linspace(0.1, 1.0, 60)[:, None]
    modes, energies = fitted_sqrt.predict_modes(x, max_modes=2)
    assert modes.shape == energies.shape == (60, 2)
    branch = np.sqrt(x)
    near_pos = (np.abs(modes - branch) < 0.1).any(1)
    near_neg = (np.abs(modes + branch) < 0.1).any(1)
    assert np.mean(near_pos & near_neg) >= 0.95
    assert np.all(energies[:, 0] <= energies[:, 1])
    # The point prediction is one of the branches, not their average.
    pred = fitted_sqrt.predict(x)
    assert np.mean(np.abs(np.abs(pred) - branch[:, 0]) < 0.1) >= 0.95


def test_score_samples_prefers_true_answers(fitted_sqrt):
    x = np.linspace(0.2, 1.0, 20)[:, None]
    right = fitted_sqrt.score_samples(x, -np.sqrt(x[:, 0]))
    wrong = fitted_sqrt.score_samples(x, np.zeros(20))
    assert np.all(right > wrong)
    best = fitted_sqrt.score_samples(x)  # -min_y F: at least the score of any answer
    assert np.all(best >= right - 1e-6)
    with pytest.raises(ValueError, match="y must hold 20 finite values"):
        fitted_sqrt.score_samples(x, np.zeros(3))


def test_same_seed_same_model_and_bad_parameters():
    X, y = _two_branches(200, 1)
    a = EnergyRegressor(n_steps=20, random_state=3).fit(X, y)
    b = EnergyRegressor(n_steps=20, random_state=3).fit(X, y)
    assert np.array_equal(a.predict(X[:10]), b.predict(X[:10]))
    assert a.loss_curve_.shape == (20,)
    with pytest.raises(ValueError, match="n_restarts must be an integer >= 1"):
        EnergyRegressor(n_restarts=0).fit(X, y)
    with pytest.raises(ValueError, match="loss must be one of"):
        EnergyRegressor(loss="squared", n_steps=1).fit(X, y)
    with pytest.raises(ValueError, match="max_modes"):
        a.predict_modes(X, max_modes=0)


def test_contrastive_loss_by_name():
    X, y = _two_branches(300, 2)
    reg = EnergyRegressor(
        loss="hinge", loss_options={"margin": 0.5}, n_steps=30, random_state=0
    ).fit(X, y)
    assert np.all(np.isfinite(reg.predict(X[:5])))


def test_warm_start_keeps_the_transform_and_trains_on():
    rng = np.random.RandomState(0)
    X = rng.randn(80, 2)
    y = X[:, 0] + 0.1 * rng.randn(80)
    reg = EnergyRegressor(
        hidden=(8,), n_steps=10, n_infer_steps=5, warm_start=True, random_state=0
    )
    reg.fit(X, y)
    before = {k: v.clone() for k, v in reg.energy_.state_dict().items()}
    mean = reg.y_mean_
    reg.fit(X, y + 5.0)
    assert reg.y_mean_ == mean and reg.loss_curve_.shape == (10,)
    assert any(not torch.equal(before[k], v) for k, v in reg.energy_.state_dict().items())

"""EnergyDensity: scikit-learn's checks, normalized log density, sampling, reproducibility."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ebmlab.estimators import EnergyDensity


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread is fastest, and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


_SMALL = {"hidden": (8,), "n_steps": 10, "n_ais_chains": 16, "n_ais_temperatures": 20}


@parametrize_with_checks([EnergyDensity(**_SMALL, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _correlated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    mean = np.array([3.0, -6.0])
    cov = np.array([[18.0, 7.2], [7.2, 9.0]])
    return rng.multivariate_normal(mean, cov, size=n), mean, cov


def _gauss_logpdf(X: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    diff = X - mean
    sol = np.linalg.solve(cov, diff.T).T
    return -0.5 * (diff * sol).sum(1) - 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]


@pytest.fixture(scope="module")
def fitted_nce() -> tuple[EnergyDensity, np.ndarray, np.ndarray, np.ndarray]:
    X, mean, cov = _correlated(1000, 0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        est = EnergyDensity(hidden=(32, 32), objective="nce", n_steps=300, random_state=0)
        return est.fit(X), X, mean, cov
    finally:
        torch.set_num_threads(n)


def test_normalized_log_density_matches_the_true_one(fitted_nce):
    est, _, mean, cov = fitted_nce
    assert est.normalized_ and est.log_z_estimate_.method == "quadrature"
    assert np.isfinite(est.log_z_) and est.log_z_stderr_ >= 0
    Xt, _, _ = _correlated(2000, 1)
    truth = _gauss_logpdf(Xt, mean, cov)
    model = est.score_samples(Xt)
    # Held-out mean log-likelihood: a model is never better than the truth by more
    # than the sampling error of the difference, and a good one is close to it.
    diff = model - truth
    se = diff.std() / np.sqrt(len(diff))
    assert diff.mean() < 4 * se
    assert diff.mean() > -0.1, (diff.mean(), se)
    assert est.score(Xt) == pytest.approx(model.mean())
    # NCE's own learned log Z agrees with quadrature of the same energy.
    assert abs(est._learned_log_z - est.log_z_) < 0.1


def test_sample_is_in_input_units_and_matches_moments(fitted_nce):
    est, _, mean, cov = fitted_nce
    S = est.sample(2000, random_state=0)
    assert S.shape == (2000, 2)
    sd = np.sqrt(np.diag(cov))
    # Chains are close to independent (MALA from the reference, 400 steps).
    assert np.all(np.abs(S.mean(0) - mean) < 5 * sd / np.sqrt(2000) + 0.1 * sd)
    assert np.all(np.abs(S.std(0) / sd - 1) < 0.15)
    assert np.array_equal(S, est.sample(2000, random_state=0))


def test_same_seed_same_model_pandas_and_objectives():
    pd = pytest.importorskip("pandas")
    X, _, _ = _correlated(300, 2)
    kw = {"hidden": (16,), "n_steps": 40, "log_z_method": None}
    a = EnergyDensity(**kw, random_state=3).fit(X)
    b = EnergyDensity(**kw, random_state=3).fit(pd.DataFrame(X, columns=["u", "v"]))
    assert np.array_equal(a.score_samples(X), b.score_samples(pd.DataFrame(X, columns=["u", "v"])))
    assert list(b.feature_names_in_) == ["u", "v"]
    assert not a.normalized_ and np.isnan(a.log_z_)
    c = EnergyDensity(**kw, random_state=4).fit(X)
    assert not np.array_equal(a.score_samples(X), c.score_samples(X))
    for objective in ("dsm", "ssm", "pcd"):
        est = EnergyDensity(**kw, objective=objective, random_state=0).fit(X)
        assert np.all(np.isfinite(est.score_samples(X)))


def test_bad_parameters_are_named():
    X, _, _ = _correlated(50, 3)
    with pytest.raises(ValueError, match="objective must be one of"):
        EnergyDensity(objective="nope").fit(X)
    with pytest.raises(ValueError, match="log_z_method='nce' needs objective='nce'"):
        EnergyDensity(log_z_method="nce").fit(X)
    with pytest.raises(ValueError, match="device="):
        EnergyDensity(device="cuda:99" if torch.cuda.is_available() else "cuda").fit(X)
    with pytest.raises(ValueError, match="n_steps must be an integer >= 0"):
        EnergyDensity(n_steps=-1).fit(X)


def test_pipeline_and_grid_search():
    X, _, _ = _correlated(200, 4)
    pipe = make_pipeline(StandardScaler(), EnergyDensity(**_SMALL, random_state=0))
    pipe.fit(X)
    assert pipe.score_samples(X[:5]).shape == (5,)
    grid = GridSearchCV(
        EnergyDensity(hidden=(8,), log_z_method="auto", random_state=0),
        {"n_steps": [0, 60]},
        cv=2,
    ).fit(X)
    assert grid.best_params_["n_steps"] == 60  # training beats the untrained network
    assert np.isfinite(grid.best_score_)


def test_warm_start_and_checkpoint_dir(tmp_path):
    from ebmlab.estimators import EnergyOutlierDetector

    X = np.random.RandomState(0).randn(200, 2)
    kw = {"hidden": (16,), "n_steps": 40, "random_state": 0}
    whole = EnergyDensity(**kw).fit(X)
    EnergyDensity(**kw, checkpoint_dir=tmp_path).fit(X)
    # A complete checkpoint is resumed (nothing left to do): same weights as the fit itself.
    again = EnergyDensity(**kw, checkpoint_dir=tmp_path).fit(X)
    for k, v in whole.energy_.state_dict().items():
        assert torch.equal(v, again.energy_.state_dict()[k])
    warm = EnergyDensity(**kw, warm_start=True).fit(X)
    before = {k: v.clone() for k, v in warm.energy_.state_dict().items()}
    mean = warm.mean_.copy()
    warm.fit(X + 1.0)  # trained on, with the first fit's transform
    assert np.array_equal(warm.mean_, mean)
    assert any(not torch.equal(before[k], v) for k, v in warm.energy_.state_dict().items())
    det = EnergyOutlierDetector(hidden=(16,), n_steps=20, warm_start=True, random_state=0)
    first = det.fit(X).density_
    assert det.fit(X).density_ is first

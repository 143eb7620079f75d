"""EnergyDenoiser: scikit-learn checks, Gaussian denoising, inpainting, noise models."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ebmlab.estimators import EnergyDenoiser
from ebmlab.estimators.denoiser import psnr

#: Every generic check passes; none is expected to fail.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

SMALL = {"hidden": (16,), "n_steps": 10, "n_levels": 3, "n_inner": 1}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@parametrize_with_checks(
    [EnergyDenoiser(**SMALL, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def low_rank(n: int, seed: int, d: int = 8) -> np.ndarray:
    """Rows near a 2-D plane in ``d`` dimensions (plus a small isotropic jitter)."""
    rng = np.random.RandomState(seed)
    basis = np.linalg.qr(np.random.RandomState(99).randn(d, 2))[0].T  # (2, d), fixed
    return rng.randn(n, 2) @ basis + 0.02 * rng.randn(n, d)


@pytest.fixture(scope="module")
def fitted() -> EnergyDenoiser:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return EnergyDenoiser(hidden=(64, 64), noise_std=0.3, n_steps=600, random_state=0).fit(
            low_rank(1000, 0)
        )
    finally:
        torch.set_num_threads(n)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def test_gaussian_noise_is_removed_by_every_method(fitted):
    X = low_rank(300, 1)
    Y = X + 0.3 * np.random.RandomState(2).randn(*X.shape)
    noisy = mse(X, Y)  # about 0.09; the ideal (projection) keeps 2/8 of it
    for method, factor in (("tweedie", 0.5), ("descent", 0.6), ("langevin", 0.6)):
        out = fitted.set_params(method=method, n_chains=4).transform(Y)
        assert out.shape == X.shape
        assert mse(X, out) < factor * noisy, (method, mse(X, out), noisy)
    fitted.set_params(method="tweedie")


def test_inpainting_keeps_observed_entries_and_fills_from_correlations(fitted):
    X = low_rank(300, 3)
    rng = np.random.RandomState(4)
    mask = rng.rand(*X.shape) > 0.3
    mean_fill = np.where(mask, X, X.mean(0))
    base = mse(X, mean_fill)
    for method in ("tweedie", "descent", "langevin"):
        den = fitted.set_params(noise="mask", method=method, n_chains=4)
        out = den.transform(X, mask=mask)
        np.testing.assert_array_equal(out[mask], X[mask])
        assert mse(X, out) < 0.5 * base, (method, mse(X, out), base)
        # NaN entries are missing too, with or without a mask.
        out_nan = den.transform(np.where(mask, X, np.nan))
        np.testing.assert_allclose(out_nan, out, rtol=1e-12, atol=1e-12)
    fitted.set_params(noise="gaussian", method="tweedie")


def test_salt_and_pepper_only_touches_extreme_entries():
    X = np.clip(0.5 + 0.2 * low_rank(400, 5), 0, 1)
    den = EnergyDenoiser(**{**SMALL, "n_steps": 200}, noise="salt-and-pepper", random_state=0).fit(
        X
    )
    rng = np.random.RandomState(6)
    hit = rng.rand(*X.shape) < 0.1
    Y = np.where(hit, np.where(rng.rand(*X.shape) < 0.5, X.min(0), X.max(0)), X)
    out = den.transform(Y)
    keep = ~(np.isclose(Y, X.min(0)) | np.isclose(Y, X.max(0)))
    np.testing.assert_array_equal(out[keep], Y[keep])
    assert mse(X, out) < mse(X, Y)


def test_reproducible_pandas_pipeline_and_grid_search():
    pd = pytest.importorskip("pandas")
    X = low_rank(120, 7)
    a = EnergyDenoiser(**SMALL, random_state=3).fit(X)
    b = EnergyDenoiser(**SMALL, random_state=3).fit(pd.DataFrame(X))
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    pipe = make_pipeline(StandardScaler(), EnergyDenoiser(**SMALL, random_state=0)).fit(X)
    assert pipe.transform(X).shape == X.shape

    noise = 0.3 * np.random.RandomState(8).randn(*X.shape)

    def restoration(est, X_, y_=None):  # higher is better: minus the restoration error
        return -mse(X_, est.transform(X_ + noise[: len(X_)]))

    grid = GridSearchCV(
        EnergyDenoiser(**SMALL, noise_std=0.3, random_state=0),
        {"n_steps": [2, 100]},
        scoring=restoration,
        cv=2,
    ).fit(X)
    assert grid.best_params_ == {"n_steps": 100}


def test_bad_parameters_shapes_and_device():
    X = low_rank(20, 9)
    with pytest.raises(ValueError, match="noise must be one of"):
        EnergyDenoiser(noise="poisson").fit(X)
    with pytest.raises(ValueError, match="method must be one of"):
        EnergyDenoiser(method="median").fit(X)
    with pytest.raises(ValueError, match="noise_std must be > 0"):
        EnergyDenoiser(noise_std=0).fit(X)
    den = EnergyDenoiser(**SMALL, random_state=0, device="cpu").fit(X)
    with pytest.raises(ValueError, match="mask must have the shape of X"):
        den.transform(X, mask=np.ones((3, 8), dtype=bool))
    with pytest.raises(ValueError, match="device"):
        EnergyDenoiser(**SMALL, device="tpu").fit(X)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            EnergyDenoiser(**SMALL, device="cuda").fit(X)


def test_psnr():
    assert psnr(np.zeros(4), np.full(4, 0.1)) == pytest.approx(20.0)
    assert psnr(np.ones(3), np.ones(3)) == float("inf")
    with pytest.raises(ValueError, match="same shape"):
        psnr(np.zeros(3), np.zeros(4))

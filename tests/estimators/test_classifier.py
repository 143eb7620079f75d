"""EnergyClassifier (JEM): scikit-learn checks, accuracy, OOD scores, sampling, calibration."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ebmlab.estimators import EnergyClassifier
from ebmlab.estimators.classifier import expected_calibration_error

#: Every generic check passes; none is expected to fail.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

SMALL = {
    "hidden": (16,),
    "n_epochs": 20,
    "batch_size": 32,
    "learning_rate": 2e-2,
    "sgld_steps": 1,
    "buffer_size": 64,
}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread is fastest, and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@parametrize_with_checks(
    [EnergyClassifier(**SMALL, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def blobs(n: int, seed: int, d: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian blobs with string labels."""
    rng = np.random.RandomState(seed)
    centres = 3.0 * np.eye(3, d)
    y = rng.randint(3, size=n)
    X = centres[y] + 0.5 * rng.randn(n, d)
    return X, np.array(["ant", "bee", "cat"])[y]


@pytest.fixture(scope="module")
def fitted() -> EnergyClassifier:
    X, y = blobs(300, 0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return EnergyClassifier(
            hidden=(32, 32), n_epochs=30, calibration="temperature", random_state=0
        ).fit(X, y)
    finally:
        torch.set_num_threads(n)


def test_classifies_and_reports_calibration(fitted):
    X, y = blobs(300, 1)
    assert list(fitted.classes_) == ["ant", "bee", "cat"]
    assert fitted.score(X, y) >= 0.95
    proba = fitted.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-9)
    assert np.array_equal(fitted.classes_[proba.argmax(1)], fitted.predict(X))
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(X)), proba, rtol=1e-6)
    assert 0.05 <= fitted.temperature_ <= 20.0
    assert 0.0 <= fitted.ece_ <= 1.0 and 0.0 <= fitted.ece_uncalibrated_ <= 1.0
    ece = fitted.calibration_error(X, y)
    assert 0.0 <= ece <= 0.2
    assert ece == pytest.approx(
        expected_calibration_error(proba, np.searchsorted(fitted.classes_, y))
    )
    assert fitted.loss_curve_.shape == (30,) and np.isfinite(fitted.loss_curve_).all()


def test_score_samples_is_logsumexp_and_flags_far_inputs(fitted):
    X, _ = blobs(200, 2)
    s_in = fitted.score_samples(X)
    rng = np.random.RandomState(3)
    far = rng.uniform(-8, 8, size=(200, 4))
    far = far[
        np.linalg.norm(far[:, None, :3] - 3.0 * np.eye(3, 4)[None, :, :3], axis=2).min(1) > 4
    ]
    s_out = fitted.score_samples(far)
    # AUROC of in-distribution vs far points, by counting ordered pairs.
    auroc = (s_in[:, None] > s_out[None, :]).mean()
    assert auroc > 0.9, auroc
    logits = fitted.decision_function(X[:5]) * fitted.temperature_
    np.testing.assert_allclose(s_in[:5], np.log(np.exp(logits).sum(1)), rtol=1e-5, atol=1e-5)


def test_class_conditional_samples_are_recognized(fitted):
    for label in fitted.classes_:
        xs = fitted.sample(40, y=label)
        assert xs.shape == (40, 4)
        assert np.mean(fitted.predict(xs) == label) >= 0.8
    assert fitted.sample(7).shape == (7, 4)
    with pytest.raises(ValueError, match="y must be one label or 3 labels"):
        fitted.sample(3, y="dog")
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        fitted.sample(0)


def test_reproducible_pandas_pipeline_and_grid_search():
    pd = pytest.importorskip("pandas")
    X, y = blobs(150, 4)
    kw = {**SMALL, "random_state": 5}
    a = EnergyClassifier(**kw).fit(X, y)
    np.testing.assert_array_equal(
        a.predict_proba(X), EnergyClassifier(**kw).fit(X, y).predict_proba(X)
    )
    frame = pd.DataFrame(X, columns=list("abcd"))
    b = EnergyClassifier(**kw).fit(frame, pd.Series(y))
    # Same model up to float rounding (a DataFrame's column layout changes summation order).
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(frame), rtol=1e-9, atol=1e-12)
    assert list(b.feature_names_in_) == list("abcd")
    pipe = make_pipeline(StandardScaler(), EnergyClassifier(**kw)).fit(X, y)
    assert pipe.score(X, y) >= 0.9
    grid = GridSearchCV(EnergyClassifier(**kw), {"hidden": [(8,), (16,)]}, cv=2).fit(X, y)
    assert grid.best_params_["hidden"] in [(8,), (16,)]
    assert grid.predict(X[:3]).shape == (3,)


def test_plain_classifier_without_generative_term_and_no_calibration():
    X, y = blobs(120, 6)
    clf = EnergyClassifier(
        **{**SMALL, "generative_weight": 0.0, "energy_reg": 0.0},
        calibration="none",
        random_state=0,
    ).fit(X, y)
    assert clf.temperature_ == 1.0 and np.isnan(clf.ece_)
    assert clf.score(X, y) >= 0.9


def test_bad_parameters_and_device():
    X, y = blobs(30, 7)
    with pytest.raises(ValueError, match="sgld_steps must be an integer >= 0"):
        EnergyClassifier(sgld_steps=-1).fit(X, y)
    with pytest.raises(ValueError, match="calibration must be one of"):
        EnergyClassifier(calibration="platt").fit(X, y)
    with pytest.raises(ValueError, match="label_smoothing"):
        EnergyClassifier(label_smoothing=1.0).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        EnergyClassifier(**SMALL).fit(X, np.zeros(30))
    with pytest.raises(ValueError, match="device"):
        EnergyClassifier(**SMALL, device="tpu").fit(X, y)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            EnergyClassifier(**SMALL, device="cuda").fit(X, y)
    assert EnergyClassifier(**SMALL, device="cpu", random_state=0).fit(X, y).score(X, y) > 0.5


def test_expected_calibration_error_by_hand():
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    # Each row is alone in its 1/15-wide bin: |correct - confidence| per row.
    expected = (0.1 + 0.8 + 0.3 + 0.4) / 4
    assert expected_calibration_error(p, y, n_bins=15) == pytest.approx(expected)
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(p, y, n_bins=0)


class _KilledError(Exception):
    pass


def test_checkpoint_dir_resumes_a_killed_fit_to_the_same_weights(tmp_path, monkeypatch):
    import ebmlab.train.loop as mod

    X, y = blobs(96, 8)
    kw = {**SMALL, "n_epochs": 4, "random_state": 3}
    whole = EnergyClassifier(**kw).fit(X, y)
    real_fit = mod.fit

    def killed_fit(*args, **kwargs):
        def on_log(row):
            # 3 updates per epoch; killed at epoch 2's log row, before its checkpoint
            if row["step"] >= 6:
                raise _KilledError

        return real_fit(*args, **kwargs, on_log=on_log)

    monkeypatch.setattr(mod, "fit", killed_fit)
    with pytest.raises(_KilledError):
        EnergyClassifier(**kw, checkpoint_dir=tmp_path).fit(X, y)
    monkeypatch.setattr(mod, "fit", real_fit)
    resumed = EnergyClassifier(**kw, checkpoint_dir=tmp_path).fit(X, y)
    a, b = whole.energy_.state_dict(), resumed.energy_.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.loss_curve_.shape == (3,)  # the epochs this call ran (2, 3, 4)


def test_warm_start_continues_from_the_fitted_network():
    X, y = blobs(96, 9)
    clf = EnergyClassifier(**{**SMALL, "n_epochs": 1}, warm_start=True, random_state=0)
    first = {k: v.clone() for k, v in clf.fit(X, y).energy_.state_dict().items()}
    cold = EnergyClassifier(**{**SMALL, "n_epochs": 1}, random_state=0).fit(X, y)
    clf.fit(X, y)
    moved = [not torch.equal(first[k], v) for k, v in clf.energy_.state_dict().items()]
    assert any(moved)  # trained further from where it stopped, not reset
    assert clf.score(X, y) >= cold.score(X, y) - 0.05


def test_conv_backbone_on_flat_images():
    rng = np.random.RandomState(0)
    y = rng.randint(2, size=64)
    imgs = np.zeros((64, 1, 8, 8))
    imgs[y == 0, :, :, :4] = 1.0  # left half lit vs right half lit
    imgs[y == 1, :, :, 4:] = 1.0
    X = (imgs + 0.1 * rng.randn(*imgs.shape)).reshape(64, 64)
    clf = EnergyClassifier(
        backbone="conv",
        image_shape=(1, 8, 8),
        n_epochs=8,
        batch_size=16,
        learning_rate=3e-3,
        sgld_steps=2,
        buffer_size=32,
        random_state=0,
    ).fit(X, y)
    assert clf.score(X, y) >= 0.9
    assert clf.sample(3, y=1).shape == (3, 64)
    with pytest.raises(ValueError, match="needs image_shape"):
        EnergyClassifier(backbone="conv").fit(X, y)


def test_default_epochs_depend_on_the_backbone():
    """``n_epochs=None``: 60 passes for the MLP, fewer for an image trunk (docs/benchmarks.md)."""
    from ebmlab.estimators.classifier import _IMAGE_EPOCHS, _MLP_EPOCHS

    rng = np.random.RandomState(0)
    X, y = rng.rand(12, 16), np.arange(12) % 2
    small = {"batch_size": 12, "sgld_steps": 0, "buffer_size": 4, "random_state": 0}
    mlp = EnergyClassifier(hidden=(4,), **small).fit(X, y)
    conv = EnergyClassifier(backbone="conv", image_shape=(1, 4, 4), **small).fit(X, y)
    assert (mlp.n_epochs_, len(mlp.loss_curve_)) == (_MLP_EPOCHS, _MLP_EPOCHS) == (60, 60)
    assert (conv.n_epochs_, len(conv.loss_curve_)) == (_IMAGE_EPOCHS, _IMAGE_EPOCHS)
    assert _IMAGE_EPOCHS < _MLP_EPOCHS
    # Image trunks default to class-conditional and chimera negatives; the MLP to neither.
    assert (conv.sgld_conditional_, conv.nda_weight_) == (True, 0.3)
    assert (mlp.sgld_conditional_, mlp.nda_weight_) == (False, 0.0)
    assert (conv.calibration_, mlp.calibration_) == ("temperature", "none")
    assert (conv._objective().conditional, conv._objective().nda_weight) == (True, 0.3)
    assert not mlp._objective().conditional and mlp._objective().nda_weight == 0.0
    assert EnergyClassifier(n_epochs=3, hidden=(4,), **small).fit(X, y).n_epochs_ == 3


def test_conditional_negatives_and_negative_augmentation_reach_the_objective():
    X, y = blobs(120, 6)
    base = {**SMALL, "n_epochs": 10, "random_state": 0}
    plain = EnergyClassifier(**base).fit(X, y)
    clf = EnergyClassifier(**base, sgld_conditional=True, nda_weight=0.5).fit(X, y)
    obj = clf._objective()
    assert obj.conditional and obj.nda_weight == 0.5
    assert not plain._objective().conditional and plain._objective().nda_weight == 0.0
    assert clf.score(X, y) >= 0.9
    assert not np.allclose(clf.score_samples(X), plain.score_samples(X))
    with pytest.raises(ValueError, match="nda_weight must be >= 0"):
        EnergyClassifier(nda_weight=-1.0).fit(X, y)

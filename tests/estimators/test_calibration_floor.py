"""ece_floor (the ECE of a calibrated model on finitely many rows) and the reliability diagram."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.stats import binom

from ebmlab.estimators.classifier import ece_floor, expected_calibration_error
from ebmlab.plotting import plot_reliability


@pytest.mark.parametrize("n", [250, 1000])
def test_one_bin_floor_is_the_mean_absolute_binomial_deviation(n):
    # Every row has confidence 0.7: one bin, ECE = |K / n - 0.7| with K ~ Binomial(n, 0.7)
    # when the labels follow the probabilities. Its exact mean from the binomial pmf:
    k = np.arange(n + 1)
    exact = float((binom.pmf(k, n, 0.7) * np.abs(k / n - 0.7)).sum())
    n_draws = 400
    mean, sd = ece_floor(np.tile([0.7, 0.3], (n, 1)), n_draws=n_draws, seed=1)
    # The Monte Carlo mean of n_draws draws: 4 standard errors.
    assert abs(mean - exact) < 4 * sd / np.sqrt(n_draws), (mean, exact, sd)
    # And the spread of the ECE itself: sd(|K/n - 0.7|), within 15% (n_draws = 400).
    exact_sd = np.sqrt(0.7 * 0.3 / n - exact**2)
    assert sd == pytest.approx(exact_sd, rel=0.15)


def _probabilities(n: int, rng: np.random.Generator) -> np.ndarray:
    logits = rng.normal(size=(n, 10)) * 3.0
    logits[np.arange(n), rng.integers(0, 10, n)] += 6.0  # confident, as a good classifier
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_a_calibrated_model_sits_at_the_floor_and_an_overconfident_one_above_it():
    rng = np.random.default_rng(0)
    p = _probabilities(1000, rng)
    y = np.array([rng.choice(10, p=row) for row in p])  # calibrated by construction
    mean, sd = ece_floor(p, seed=2)
    assert abs(expected_calibration_error(p, y) - mean) < 4 * sd
    sharp = p**3 / (p**3).sum(1, keepdims=True)  # overconfident: same labels, T = 1/3
    mean_s, sd_s = ece_floor(sharp, seed=2)
    assert expected_calibration_error(sharp, y) > mean_s + 4 * sd_s


def test_floor_is_reproducible_and_checks_its_input():
    p = _probabilities(200, np.random.default_rng(3))
    assert ece_floor(p, seed=5) == ece_floor(p, seed=5)
    assert ece_floor(p, seed=5) != ece_floor(p, seed=6)
    with pytest.raises(ValueError, match="proba must be"):
        ece_floor(p[:, 0])
    with pytest.raises(ValueError, match="n_draws"):
        ece_floor(p, n_draws=1)


def test_reliability_diagram_writes_a_png(tmp_path):
    rng = np.random.default_rng(4)
    p = _probabilities(300, rng)
    y = p.argmax(1)
    out = plot_reliability(
        {"a": p, "b": p**2 / (p**2).sum(1, keepdims=True)}, y, tmp_path / "r.png"
    )
    assert out == tmp_path / "r.png"
    with Image.open(out) as im:
        assert im.size[0] > 300 and im.size[1] > 200
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically, no leftovers
    with pytest.raises(ValueError, match=r"'a'.*matching y"):
        plot_reliability({"a": p[:10]}, y, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="n_bins"):
        plot_reliability(p, y, tmp_path / "bad.png", n_bins=0)

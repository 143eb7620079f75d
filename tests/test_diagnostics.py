"""ebmlab.diagnostics against processes with known autocorrelation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ebmlab.diagnostics import (
    acceptance_summary,
    autocorrelation,
    effective_sample_size,
    integrated_autocorrelation_time,
    rhat,
)
from helpers import bonferroni_z


def ar1(
    phi: float, n_draws: int, shape: tuple[int, ...], generator: torch.Generator
) -> torch.Tensor:
    """Stationary AR(1) ``x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t``: unit variance,
    ``rho_t = phi^t``, ``tau = (1 + phi) / (1 - phi)``; shape ``(n_draws, *shape)``."""
    noise = torch.randn(n_draws, *shape, generator=generator, dtype=torch.float64)
    x = torch.empty_like(noise)
    x[0] = noise[0]
    scale = math.sqrt(1.0 - phi**2)
    for t in range(1, n_draws):
        x[t] = phi * x[t - 1] + scale * noise[t]
    return x


def sokal_sd(tau: float, n_total: int, window_factor: float = 3.0) -> float:
    """Standard deviation of a windowed estimate of ``tau`` (Sokal 1997, eq. 3.19):
    ``var(tau_hat) ~ 2 (2 M + 1) / N tau^2`` with window ``M``. Geyer's sequence
    stops within a few ``tau`` for AR(1): ``M = 3 max(tau, 1) + 2`` is generous."""
    t = max(tau, 1.0)
    window = window_factor * t + 2.0
    return t * math.sqrt(2.0 * (2.0 * window + 1.0) / n_total)


def assert_tau_close(tau: torch.Tensor, tau_true: float, n_total: int, z: float = 4.0) -> None:
    """Estimates ``tau`` of independent coordinates ``(n,)`` against the truth.

    * The median over coordinates within ``z`` of its standard error
      (``1.2533 sd / sqrt(n)``), a precision check insensitive to outliers.
    * Each coordinate (Bonferroni): not below ``tau_true - z sd`` (an
      underestimate overstates the ESS); not above ``tau_true + z sd_20``, where
      ``sd_20`` uses a window of ``20 tau``: Geyer's truncation sometimes
      comes late and keeps positive noise pairs, so the right tail is heavy.
    """
    n = tau.numel()
    sd = sokal_sd(tau_true, n_total)
    se_median = 1.2533 * sd / math.sqrt(n)
    median = float(tau.median())
    z_each = bonferroni_z(z, n)
    low, high = tau_true - z_each * sd, tau_true + z_each * sokal_sd(tau_true, n_total, 20.0)
    report = (
        f"tau: observed {[round(v, 4) for v in tau.tolist()]}, expected {tau_true:.4g}, "
        f"SD {sd:.3g}, median {median:.4g} (SE {se_median:.3g}), allowed [{low:.4g}, {high:.4g}], "
        f"ESS {[round(n_total / v) for v in tau.tolist()]}"
    )
    assert abs(median - tau_true) < z * se_median, report
    assert bool(((tau > low) & (tau < high)).all()), report


@pytest.mark.parametrize("phi", [-0.5, 0.0, 0.5, 0.9])
def test_ess_of_ar1_matches_theory(phi, generator):
    n_draws, n_chains, n_coords = 2000, 16, 8
    x = ar1(phi, n_draws, (n_chains, n_coords), generator)
    n_total = n_draws * n_chains
    tau = integrated_autocorrelation_time(x)
    ess = effective_sample_size(x)
    assert tau.shape == ess.shape == (n_coords,)
    torch.testing.assert_close(ess, n_total / tau)
    assert_tau_close(tau, (1.0 + phi) / (1.0 - phi), n_total)


def test_ess_of_iid_is_about_total_and_antithetic_exceeds_it(generator):
    n_draws, n_chains = 1000, 20
    iid = torch.randn(n_draws, n_chains, 8, generator=generator, dtype=torch.float64)
    ess = effective_sample_size(iid)
    assert ess.shape == (8,)
    assert effective_sample_size(iid[..., 0]).shape == ()
    n_total = n_draws * n_chains
    assert_tau_close(n_total / ess, 1.0, n_total)
    anti = ar1(-0.5, n_draws, (n_chains,), generator)
    assert float(effective_sample_size(anti)) > 2 * n_total


def test_ess_decreases_with_correlation(generator):
    taus = [
        float(integrated_autocorrelation_time(ar1(phi, 1000, (8,), generator)))
        for phi in (0.0, 0.5, 0.8, 0.95)
    ]
    assert taus == sorted(taus), taus


def test_autocorrelation_of_ar1(generator):
    n_draws, n_chains = 2000, 16
    x = ar1(0.7, n_draws, (n_chains,), generator)
    rho = autocorrelation(x)
    assert rho.shape == (n_draws,)
    assert float(rho[0]) == pytest.approx(1.0)
    lags = torch.arange(1, 6)
    # Bartlett: var(rho_t) ~ (1 + phi^2) / (1 - phi^2) / N for AR(1) at small lags.
    se = math.sqrt((1 + 0.49) / (1 - 0.49) / (n_draws * n_chains))
    expected = 0.7 ** lags.double()
    assert bool(((rho[lags] - expected).abs() < bonferroni_z(4.0, 5) * se).all()), (
        rho[lags].tolist(),
        expected.tolist(),
        se,
    )


def test_autocorrelation_matches_direct_formula(generator):
    """Vehtari et al. (2021) eq. 10 by explicit sums at every lag (no FFT)."""
    n, m = 37, 3
    x = (
        ar1(0.6, n, (m, 2), generator)
        + torch.tensor([0.0, 0.3, -0.2], dtype=torch.float64)[:, None]
    )
    xn = x.numpy()
    expected = np.empty((n, 2))
    for d in range(2):
        c = xn[:, :, d] - xn[:, :, d].mean(0)
        acov = np.array([[c[: n - t, j] @ c[t:, j] / n for j in range(m)] for t in range(n)])
        within = acov[0].mean() * n / (n - 1)
        var_plus = within * (n - 1) / n + xn[:, :, d].mean(0).var(ddof=1)
        expected[:, d] = 1.0 - (within - acov.mean(1)) / var_plus
    expected[0] = 1.0
    np.testing.assert_allclose(autocorrelation(x).numpy(), expected, rtol=1e-10, atol=1e-12)


def test_shapes_dtypes_and_affine_invariance(generator, device):
    x = torch.randn(50, 3, 2, 4, generator=generator, dtype=torch.float64).to(device)
    for fn in (effective_sample_size, integrated_autocorrelation_time, rhat):
        out = fn(x)
        assert out.shape == (2, 4)
        assert out.dtype == torch.float64
        assert out.device == x.device
        torch.testing.assert_close(fn(3.0 * x - 7.0), out)
        torch.testing.assert_close(fn(x.float()), out, rtol=1e-4, atol=1e-4)
    assert autocorrelation(x).shape == (50, 2, 4)
    # a single chain is allowed
    assert effective_sample_size(x[:, :1]).shape == (2, 4)


def test_disagreeing_chains_have_low_ess_and_high_rhat(generator):
    n_draws, n_chains = 500, 8
    x = torch.randn(n_draws, n_chains, generator=generator, dtype=torch.float64)
    offset = torch.arange(n_chains, dtype=torch.float64)  # chain means 0..7
    stuck = x + offset
    assert float(effective_sample_size(stuck)) < 0.05 * n_draws * n_chains
    assert float(rhat(stuck)) > 1.5


def test_rhat_of_iid_is_one_within_sampling_error(generator):
    n_draws, n_chains = 400, 10
    x = torch.randn(n_draws, n_chains, 6, generator=generator, dtype=torch.float64)
    r = rhat(x)
    # split chains: m = 2 C halves of n = T / 2; R^2 - 1 ~ (chi2_{m-1} / (m-1) - 1) / n.
    n, m = n_draws // 2, 2 * n_chains
    sd = math.sqrt(2.0 / (m - 1)) / n
    assert bool(((r**2 - 1).abs() < bonferroni_z(4.0, 6) * sd).all()), (r.tolist(), sd)


def test_split_rhat_catches_a_drifting_single_chain(generator):
    n_draws = 1000
    drift = torch.linspace(0.0, 3.0, n_draws, dtype=torch.float64)[:, None]
    x = drift + torch.randn(n_draws, 1, generator=generator, dtype=torch.float64)
    assert float(rhat(x)) > 1.2
    # an odd number of draws drops the middle one
    assert rhat(x[:-1]).shape == ()


def test_constant_chains_give_nan():
    x = torch.ones(20, 3, 2, dtype=torch.float64)
    assert bool(effective_sample_size(x).isnan().all())
    assert bool(integrated_autocorrelation_time(x).isnan().all())


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.zeros(10), "n_draws, n_chains"),
        (torch.zeros(3, 2), "at least 4 draws"),
    ],
)
def test_invalid_chains_raise(bad, match):
    for fn in (effective_sample_size, integrated_autocorrelation_time, rhat, autocorrelation):
        with pytest.raises(ValueError, match=match):
            fn(bad)


def test_acceptance_summary_values():
    rates = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64)
    s = acceptance_summary(rates)
    assert s["mean"] == pytest.approx(0.5)
    assert s["min"] == 0.0
    assert s["max"] == 1.0
    assert s["median"] == pytest.approx(0.5)
    assert s["q05"] == pytest.approx(0.05)
    assert s["q95"] == pytest.approx(0.95)
    assert s["std"] == pytest.approx(float(rates.std()))
    assert s["fraction_stuck"] == pytest.approx(0.2)
    assert s["n_chains"] == 5
    assert all(isinstance(v, int | float) for v in s.values())


def test_acceptance_summary_averages_steps_first():
    per_step = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.5, 0.0]])
    s = acceptance_summary(per_step, stuck_below=0.1)
    assert s["n_chains"] == 2
    assert s["max"] == pytest.approx(0.5)
    assert s["fraction_stuck"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (torch.tensor([0.5, 1.5]), r"\[0, 1\]"),
        (torch.tensor([0.5, float("nan")]), r"\[0, 1\]"),
        (torch.tensor([-0.1]), r"\[0, 1\]"),
        (torch.zeros(2, 2, 2), "n_chains"),
        (torch.zeros(0), "n_chains"),
    ],
)
def test_acceptance_summary_rejects_bad_rates(bad, match):
    with pytest.raises(ValueError, match=match):
        acceptance_summary(bad)

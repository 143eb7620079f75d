"""Bidirectional Monte Carlo: forward and reverse AIS bracket the exact log Z.

Coverage is checked over a few seeded runs per test energy (the benchmark
``benchmarks/partition.py`` runs 40 per energy). With bounds widened by
``z = 3`` standard errors a calibrated run misses with probability below 0.3%,
so more than one miss in ``N_RUNS`` points at a real defect.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from ebmlab.energies import Energy
from ebmlab.partition import bdmc_log_z, enumerate_log_z, exact_log_probs

from .targets import Boltzmann, Shifted, correlated_gaussian, mixture

N_RUNS = 6


def coverage(energy, truth, make_samples, **options):
    rows, hits = [], 0
    for seed in range(N_RUNS):
        g = torch.Generator().manual_seed(seed)
        samples = make_samples(g) if make_samples else None
        est = bdmc_log_z(energy, samples, generator=g, **options)
        hit = est.lower <= truth <= est.upper
        hits += hit
        rows.append(f"[{est.lower:.4f}, {est.upper:.4f}] {'ok' if hit else 'MISS'}")
    return hits, rows


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gaussian10", "mixture2", "boltzmann10"])
def test_bracket_covers_exact_log_z(name):
    # The continuous targets use a base fitted to data (as `ebmlab evaluate` does): cheaper
    # than the event-shape-only pilot, which test_ais and the benchmark exercise.
    data_gen = torch.Generator().manual_seed(123)
    if name == "gaussian10":
        target = correlated_gaussian(10, seed=10)
        truth, make = float(target.log_z), None  # exact samples from target.sample
        data = target.sample(1000, generator=data_gen)
        options = {"n_chains": 64, "n_temperatures": 100, "data": data}
    elif name == "mixture2":
        m = mixture(2, 8, seed=1)
        target, truth = Shifted(m, 1.7), -1.7
        make = lambda g: m.sample(64, generator=g)  # noqa: E731 - exact samples, shifted energy
        options = {
            "n_chains": 64,
            "n_temperatures": 100,
            "data": m.sample(1000, generator=data_gen),
        }
    else:
        target = Boltzmann(10, seed=2, scale=2.0)
        truth = enumerate_log_z(target).value
        x, lp = exact_log_probs(target)
        make = lambda g: x[torch.multinomial(lp.exp(), 64, replacement=True, generator=g)]  # noqa: E731
        options = {"n_chains": 64, "n_temperatures": 30}
    hits, rows = coverage(target, truth, make, **options)
    assert hits >= N_RUNS - 1, f"truth {truth:.4f}:\n" + "\n".join(rows)


def test_bdmc_result_fields_and_tightness(generator):
    target = correlated_gaussian(4, seed=3)
    est = bdmc_log_z(target, n_chains=64, n_temperatures=100, tolerance=0.5, generator=generator)
    f, r = est.details["forward"], est.details["reverse"]
    assert est.method == "bdmc" and f.method == "ais" and r.method == "reverse-ais"
    assert est.details["samples"] == "exact"
    assert est.lower == pytest.approx(f.value - 3 * f.stderr)
    assert est.upper == pytest.approx(r.value + 3 * r.stderr)
    assert est.value == pytest.approx(0.5 * (f.value + r.value))
    assert est.is_tight == (est.upper - est.lower <= 0.5)
    assert est.is_tight, est  # an easy 4-D Gaussian: both directions agree
    with warnings.catch_warnings():  # 20 temperatures: low ESS warnings expected
        warnings.simplefilter("ignore", RuntimeWarning)
        loose = bdmc_log_z(
            target, n_chains=64, n_temperatures=20, tolerance=1e-6, generator=generator
        )
    assert loose.is_tight is False
    assert "NOT tight" in str(loose)


def test_approximate_posterior_samples_when_no_exact_sampler(generator):
    inner = correlated_gaussian(3, seed=8)

    class NoSampler(Energy):
        def __init__(self):
            super().__init__((3,))
            self.inner = inner

        def forward(self, x):
            return self.inner(x)

    est = bdmc_log_z(NoSampler(), n_chains=64, n_temperatures=150, generator=generator)
    assert est.details["samples"].startswith("forward AIS end states")
    assert est.lower <= float(inner.log_z) <= est.upper


def test_gibbs_chain_sample_is_not_taken_for_exact(generator):
    """RBM.sample is a finite Gibbs chain: the reverse run must not call it exact."""
    from ebmlab.boltzmann import BernoulliRBM

    rbm = BernoulliRBM(6, 4, weight_scale=1.0, generator=generator, dtype=torch.float64)
    assert callable(rbm.sample) and not getattr(rbm, "is_sample_exact", False)
    est = bdmc_log_z(rbm, n_chains=32, n_temperatures=30, n_posterior_steps=5, generator=generator)
    assert est.details["samples"] != "exact"
    assert est.details["samples_exact"] is False
    exact = bdmc_log_z(correlated_gaussian(2), n_chains=16, n_temperatures=10, generator=generator)
    assert exact.details["samples"] == "exact" and exact.details["samples_exact"] is True


def test_bdmc_errors():
    g = correlated_gaussian(2)
    with pytest.raises(ValueError, match="tolerance"):
        bdmc_log_z(g, tolerance=0.0)
    with pytest.raises(ValueError, match="samples must have shape"):
        bdmc_log_z(g, torch.zeros(10, 3), n_chains=8, n_temperatures=5)

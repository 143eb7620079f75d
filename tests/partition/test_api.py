"""The entry point log_z, likelihoods and ratios, and the Estimate type."""

from __future__ import annotations

import json

import pytest
import torch

from ebmlab.energies import Gaussian
from ebmlab.partition import Estimate, log_likelihood, log_ratio, log_z

from .targets import Boltzmann, correlated_gaussian


def test_auto_picks_exact_quadrature_or_ais(generator):
    assert log_z(Boltzmann(8)).method == "exact"
    assert log_z(Boltzmann(8), max_exact_states=100, n_chains=32, n_temperatures=20).method == (
        "ais"
    )
    g2 = correlated_gaussian(2, seed=1)
    est = log_z(g2, generator=generator)  # box from a pilot MCMC run, no bounds given
    assert est.method == "quadrature"
    assert abs(est.value - float(g2.log_z)) <= max(5 * est.stderr, 1e-5)
    est = log_z(g2, data=g2.sample(500, generator=generator), n_chains=8)  # AIS options ignored
    assert est.method == "quadrature"
    g5 = correlated_gaussian(5, seed=2)
    est = log_z(g5, n_chains=64, n_temperatures=100, generator=generator)
    assert est.method == "ais"
    assert abs(est.value - float(g5.log_z)) <= 4 * est.stderr


def test_forced_methods_and_errors(generator):
    g = correlated_gaussian(4, seed=3)
    est = log_z(g, "bdmc", n_chains=64, n_temperatures=100, tolerance=0.5, generator=generator)
    assert est.method == "bdmc" and est.lower <= float(g.log_z) <= est.upper
    with pytest.raises(ValueError, match="method must be one of"):
        log_z(g, "magic")
    with pytest.raises(ValueError, match="unknown option"):
        log_z(g, "ais", n_chainz=3)
    with pytest.raises(ValueError, match="do not apply to method='ais'"):
        log_z(g, "ais", tolerance=0.1)
    with pytest.raises(ValueError, match="dimension 1 to 3"):
        log_z(g, "quadrature")
    with pytest.raises(ValueError, match="continuous"):
        log_z(Boltzmann(4), "quadrature")
    with pytest.raises(ValueError, match="do not apply"):
        log_z(Boltzmann(4), "exact", n_chains=3)


def test_log_likelihood_matches_normalized_density():
    g = correlated_gaussian(3, seed=4)
    x = torch.randn(10, 3, dtype=torch.float64)
    ll = log_likelihood(g, x, g.log_z)
    assert ll.dtype == torch.float64 and ll.shape == (10,)
    assert torch.allclose(ll, g.log_prob(x))
    est = Estimate(float(g.log_z), 0.0, float(g.log_z), float(g.log_z), "exact", 0.0)
    assert torch.allclose(log_likelihood(g, x, est, batch_size=3), ll)
    with pytest.raises(ValueError, match="shape"):
        log_likelihood(g, torch.zeros(2, 4), 0.0)


def test_log_ratio_needs_no_z_and_has_the_right_sign():
    g = Gaussian.standard(2, dtype=torch.float64)
    a = torch.zeros(4, 2, dtype=torch.float64)
    b = torch.randn(4, 2, dtype=torch.float64)
    r = log_ratio(g, a, b)
    assert torch.allclose(r, g.log_prob(a) - g.log_prob(b))
    assert bool((r >= 0).all())  # the mode is more probable than any other point
    assert torch.allclose(log_ratio(g, a[:1], b), r)  # one row against many
    assert torch.allclose(log_ratio(g, b, a), -r)
    with pytest.raises(ValueError, match="same number of rows"):
        log_ratio(g, a[:2], b[:3])
    with pytest.raises(ValueError, match="event shape"):
        log_ratio(g, a, torch.zeros(4, 3))


def test_estimate_is_json_friendly(generator):
    est = log_z(correlated_gaussian(4), "ais", n_chains=32, n_temperatures=30, generator=generator)
    d = json.loads(json.dumps(est.to_dict()))
    assert d["method"] == "ais" and d["n_samples"] == 32
    assert "log_weights" not in d["details"] and "betas" not in d["details"]
    assert float(est) == est.value and "ESS" in str(est)

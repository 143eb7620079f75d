"""Quadrature log Z and held-out NLL against closed forms; MMD sanity."""

from __future__ import annotations

import math

import pytest
import torch

from ebmlab.energies import Gaussian, GaussianMixture
from ebmlab.evaluation import heldout_nll, mmd
from ebmlab.partition import quadrature_log_z


@pytest.mark.parametrize("d", [1, 2, 3])
def test_quadrature_matches_gaussian_closed_form(d):
    cov = torch.eye(d, dtype=torch.float64) * 0.5 + 0.2
    g = Gaussian(torch.linspace(-0.5, 0.5, d, dtype=torch.float64), cov)
    r = quadrature_log_z(g, [(-2.0, 2.0)] * d)  # box grows until the mass fits
    assert abs(r.log_z - float(g.log_z)) < max(r.error, 1e-9), r
    assert r.boundary_mass < 1e-5 and r.error < 1e-4


def test_quadrature_warns_when_box_cannot_hold_mass():
    class Flat(torch.nn.Module):
        def forward(self, x):
            return torch.zeros(x.shape[0], dtype=x.dtype)

    with pytest.warns(RuntimeWarning, match="integrable"):
        quadrature_log_z(Flat(), [(-1.0, 1.0)], max_expansions=1)


def test_heldout_nll_of_true_density_matches_entropy():
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0]], dtype=torch.float64)
    m = GaussianMixture(torch.tensor([0.3, 0.7], dtype=torch.float64), means, 0.3)
    x = m.sample(20000, generator=torch.Generator().manual_seed(0))
    r = heldout_nll(m, x)
    exact = float(-m.log_prob(x).mean())
    assert abs(r.nll - exact) < 1e-6 + 5 * r.log_z_error
    assert abs(r.log_z) < 1e-6


def test_mmd_detects_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 2, generator=g), torch.randn(400, 2, generator=g)
    assert mmd(a, b) < mmd(a, b + 0.5)
    with pytest.raises(ValueError, match="at least 2"):
        mmd(a[:1], b)
    assert math.isfinite(mmd(a, b))

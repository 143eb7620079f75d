"""2D Ising at L = 64 against Onsager's exact results (the issue's physics targets).

Cheaper than the full-precision runs of ``benchmarks/discrete.py --section
physics`` (docs/benchmarks.md), with tolerances from the sample:

- energy and |m| per spin at T = 1.5, 2.0, 2.1 by checkerboard Gibbs: the
  estimate must lie within 0.003 of Onsager's value *and* the Monte Carlo
  error must be small enough (4 SE below 0.003) for that to mean something;
  the energy is also compared with Kaufman's exact L = 64 value within 4 SE;
- the susceptibility peak at L = 64 from Swendsen-Wang runs and histogram
  reweighting: interior to the scanned window, above T_c (the finite-size
  shift is positive) and within 0.05 of it; the full run puts it at about
  T_c + 0.03 (see docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebmlab.lattice import (
    CRITICAL_TEMPERATURE,
    IsingModel,
    estimate_observables,
    kaufman_observables,
    onsager_energy,
    onsager_magnetization,
    reweight_observables,
    simulate,
)
from ebmlab.samplers import CheckerboardGibbs, SwendsenWang

pytestmark = pytest.mark.slow
L = 64


@pytest.mark.parametrize(
    ("temperature", "n_chains", "n_records"), [(1.5, 8, 100), (2.0, 32, 150), (2.1, 96, 300)]
)
def test_onsager_energy_and_magnetization(temperature, n_chains, n_records, generator):
    model = IsingModel.lattice(L, beta=1.0 / temperature)
    run = simulate(
        model,
        CheckerboardGibbs(sweeps_per_step=4),
        torch.ones(n_chains, L, L),
        n_records,
        burn_in=25,
        generator=generator,
    )
    obs = estimate_observables(run.magnetization, run.energy_per_spin, 1 / temperature, L * L)
    m, e = obs.magnetization, obs.energy_per_spin
    exact_m, exact_e = onsager_magnetization(temperature), onsager_energy(temperature)
    finite_e = kaufman_observables(L, temperature)["energy_per_spin"]
    report = (
        f"T={temperature}: |m| {m.value:.5f} +- {m.stderr:.5f} (Onsager {exact_m:.5f}), "
        f"e {e.value:.5f} +- {e.stderr:.5f} (Onsager {exact_e:.5f}, L=64 exact {finite_e:.5f})"
    )
    print(report)
    assert 4 * m.stderr < 0.003 and 4 * e.stderr < 0.003, report
    assert abs(m.value - exact_m) < 0.003, report
    assert abs(e.value - exact_e) < 0.003, report
    assert abs(e.value - finite_e) < 4 * e.stderr + 1e-4, report


def test_susceptibility_peak_near_tc(generator):
    t0 = 2.30
    run = simulate(
        IsingModel.lattice(L, beta=1.0 / t0),
        SwendsenWang(),
        torch.ones(32, L, L),
        250,
        burn_in=25,
        generator=generator,
    )
    grid = np.arange(2.26, 2.3401, 0.005)
    chi = [
        reweight_observables(
            run.magnetization, run.energy_per_spin, 1 / t0, 1 / t, L * L
        ).susceptibility.value
        for t in grid
    ]
    i = int(np.argmax(chi))
    assert 1 < i < len(grid) - 2, f"peak at the edge of the window: {grid[i]}, chi {chi}"
    # Vertex of the parabola through the points around the maximum.
    a, b, _ = np.polyfit(grid[i - 2 : i + 3], chi[i - 2 : i + 3], 2)
    t_peak = float(-b / (2 * a))
    print(f"chi peak at T = {t_peak:.4f} (T_c = {CRITICAL_TEMPERATURE:.4f})")
    assert CRITICAL_TEMPERATURE < t_peak < CRITICAL_TEMPERATURE + 0.05, (t_peak, chi)

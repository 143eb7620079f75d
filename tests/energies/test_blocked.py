"""The blocked MLP energy-and-gradient kernel (the CPU fast path) against autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ebmlab.energies._blocked as blocked
from ebmlab.energies import MLPEnergy, energy_and_grad
from ebmlab.samplers import HMC, MALA, Langevin, run
from helpers import assert_ks_marginals, assert_mean_within_mcse, assert_variance_within_mcse

F64 = torch.float64


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 7 rows, so that every batch below spans several blocks and a tail."""
    monkeypatch.setattr(blocked, "_ROWS_PER_THREAD", 7)
    monkeypatch.setattr(blocked, "_MAX_ROWS", 7)


@pytest.mark.parametrize("activation", ["silu", "elu", "softplus", "tanh", "gelu"])
@pytest.mark.parametrize("hidden", [(), (5,), (16, 9, 4)], ids=str)
@pytest.mark.parametrize(
    "options", [{}, {"base_scale": 2.0}, {"spectral_norm": True}], ids=["plain", "base", "sn"]
)
@pytest.mark.parametrize("n", [1, 7, 30])
def test_matches_autograd_in_float64(small_blocks, activation, hidden, options, n):
    energy = MLPEnergy((2, 3), hidden, activation=activation, **options).to(F64).eval()
    x = torch.randn(n, 2, 3, dtype=F64)
    e, g = energy_and_grad(energy, x)
    e2, g2 = energy.fused_energy_and_grad(x)
    assert e2.shape == (n,) and g2.shape == (n, 2, 3)
    torch.testing.assert_close(e2, e, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g2, g, rtol=1e-12, atol=1e-12)


def test_float32_and_default_blocks_agree_with_autograd():
    energy = MLPEnergy(64, (128, 128, 128)).eval()
    x = torch.randn(3000, 64)  # more than one default block on 1 or 2 threads
    e, g = energy_and_grad(energy, x)
    e2, g2 = energy.fused_energy_and_grad(x)
    # Same BLAS products and ATen derivatives: equal up to float32 rounding.
    torch.testing.assert_close(e2, e, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g2, g, rtol=1e-5, atol=1e-6)


def test_results_are_detached_and_leave_no_parameter_gradients():
    energy = MLPEnergy(3, (8,))
    x = torch.randn(5, 3, requires_grad=True)
    e, g = energy.fused_energy_and_grad(x)
    assert not e.requires_grad and not g.requires_grad
    assert all(p.grad is None for p in energy.parameters())


def test_sees_parameter_updates(small_blocks):
    energy = MLPEnergy(3, (8, 8)).to(F64)
    x = torch.randn(20, 3, dtype=F64)
    energy.fused_energy_and_grad(x)  # builds and caches the kernel
    opt = torch.optim.SGD(energy.parameters(), lr=0.1)
    energy(x).sum().backward()
    opt.step()
    e, g = energy_and_grad(energy, x)
    e2, g2 = energy.fused_energy_and_grad(x)
    torch.testing.assert_close(e2, e, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g2, g, rtol=1e-12, atol=1e-12)


def test_falls_back_to_autograd_where_it_does_not_apply():
    fourier = MLPEnergy(2, (8,), fourier_features=4).to(F64)
    x = torch.randn(6, 2, dtype=F64)
    e, g = energy_and_grad(fourier, x)
    e2, g2 = fourier.fused_energy_and_grad(x)
    torch.testing.assert_close(e2, e)
    torch.testing.assert_close(g2, g)
    assert fourier._blocked_kernel() is None
    # A dtype other than the weights' takes autograd's path and its error.
    with pytest.raises(RuntimeError):
        MLPEnergy(2, (8,)).fused_energy_and_grad(x)


def test_supported_recognizes_only_linear_activation_chains():
    lin = torch.nn.Linear
    assert blocked.supported(torch.nn.Sequential(lin(3, 4), torch.nn.SiLU(), lin(4, 1)))
    assert not blocked.supported(torch.nn.Sequential(lin(3, 4), torch.nn.ReLU(), lin(4, 1)))
    assert not blocked.supported(torch.nn.Sequential(lin(3, 4), torch.nn.SiLU(), lin(4, 2)))
    assert not blocked.supported(torch.nn.Sequential(lin(3, 4), torch.nn.SiLU()))
    with pytest.raises(TypeError, match="Linear"):
        blocked.BlockedMLPGrad(torch.nn.Sequential(lin(3, 4), torch.nn.ReLU(), lin(4, 1)))


@pytest.mark.parametrize(
    "make",
    [
        lambda c: Langevin(0.01, compile=c),
        lambda c: MALA(0.05, compile=c),
        lambda c: HMC(0.05, 3, compile=c),
    ],
    ids=["langevin", "mala", "hmc"],
)
def test_fast_path_chains_equal_eager_chains(small_blocks, monkeypatch, make):
    """compile=True on the CPU takes the blocked kernel (no torch.compile) and,
    from the same generator, follows the eager chains to float64 rounding."""

    def no_compile(*args, **kwargs):
        raise AssertionError("torch.compile must not be called for an MLPEnergy on the CPU")

    energy = MLPEnergy(3, (16, 16), base_scale=2.0).to(F64).eval()
    x0 = torch.randn(50, 3, dtype=F64)
    eager = run(make(False), energy, x0, 30, generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(torch, "compile", no_compile)
    sampler = make(True)
    fast = run(sampler, energy, x0, 30, generator=torch.Generator().manual_seed(1))
    assert not sampler._kernels.failed
    torch.testing.assert_close(fast.state.x, eager.state.x, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fast.acceptance_rate, eager.acceptance_rate)


def test_fast_path_mala_samples_a_one_dimensional_mlp_density():
    """End states of independent MALA chains through the blocked kernel match the
    energy's CDF, mean and variance computed by quadrature. With 20,000 chains
    these checks catch ULA's bias at this step size and a 1.08x temperature
    error (checked when the test was written)."""
    torch.manual_seed(3)
    energy = MLPEnergy(1, (32, 32), base_scale=1.5).to(F64).eval()
    grid = torch.linspace(-9.0, 9.0, 20_001, dtype=F64)
    with torch.no_grad():
        density = torch.exp(-(energy(grid[:, None]) - energy(grid[:, None]).min()))
    cdf = torch.cumulative_trapezoid(density, grid)
    cdf = torch.cat([cdf.new_zeros(1), cdf]) / cdf[-1]

    def reference_cdf(t: np.ndarray) -> np.ndarray:
        return np.interp(t, grid.numpy(), cdf.numpy())

    weights = density / density.sum()
    mean = float((grid * weights).sum())
    var = float(((grid - mean) ** 2 * weights).sum())
    x0 = torch.randn(20_000, 1, dtype=F64)
    sampler = MALA(0.3, compile=True)
    out = run(sampler, energy, x0, 200, generator=torch.Generator().manual_seed(0))
    assert not sampler._kernels.failed
    assert 0.3 < float(out.acceptance_rate.mean()) < 0.99
    ends = out.state.x
    assert_ks_marginals(ends, reference_cdf)
    assert_mean_within_mcse(ends[:, None], [mean])  # (draws, 1 chain, D): independent draws
    assert_variance_within_mcse(ends[:, None], [mean], [var])


def test_empty_batches_and_overridden_forward():
    energy = MLPEnergy(3, (8,)).to(F64)
    e, g = energy.fused_energy_and_grad(torch.zeros(0, 3, dtype=F64))
    assert e.shape == (0,) and g.shape == (0, 3)

    class Shifted(MLPEnergy):
        def forward(self, x):
            return super().forward(x) + x[:, 0] ** 3

    shifted = Shifted(3, (8,)).to(F64)
    x = torch.randn(9, 3, dtype=F64)
    e, g = energy_and_grad(shifted, x)
    e2, g2 = shifted.fused_energy_and_grad(x)  # the subclass's forward, through autograd
    torch.testing.assert_close(e2, e)
    torch.testing.assert_close(g2, g)
    assert shifted._blocked_kernel() is None

"""Contrastive divergence: the loss has the maximum-likelihood gradient, and
fitting a Gaussian by PCD recovers its mean and covariance."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ebmlab.energies import Energy, Gaussian, MLPEnergy
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.samplers import MALA, Langevin, ReplayBuffer
from ebmlab.train import TrainSettings, fit


class Quadratic(Energy):
    """Learnable Gaussian energy (x - m)^T L L^T (x - m) / 2 (tests only)."""

    def __init__(self, d: int) -> None:
        super().__init__(d)
        self.mean = nn.Parameter(torch.zeros(d))
        self.raw = nn.Parameter(torch.eye(d))

    def precision(self) -> torch.Tensor:
        chol = torch.tril(self.raw)
        return chol @ chol.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x - self.mean
        return 0.5 * ((r @ self.precision()) * r).sum(-1)


def noise(n: int, g: torch.Generator | None) -> torch.Tensor:
    return torch.randn(n, 2, generator=g, dtype=torch.float64) * 2


@pytest.mark.parametrize("mode", ["cd", "pcd", "short-run"])
def test_loss_shapes_and_state(mode, generator):
    energy = MLPEnergy(2, hidden=(8,)).double()
    cd = ContrastiveDivergence(Langevin(0.01), n_steps=3, mode=mode, init_fn=noise, alpha=0.1)
    state = cd.init_state(16, generator=generator)
    assert (state is None) == (mode != "pcd")
    loss, diag, state2 = cd(
        energy, torch.randn(16, 2, dtype=torch.float64), state, generator=generator
    )
    assert loss.shape == () and loss.requires_grad
    assert state2 is state
    for field in diag:
        assert field.shape == () and torch.isfinite(field)
    assert diag.regularization > 0
    assert torch.isclose(diag.energy_gap, diag.energy_neg - diag.energy_pos)


def test_pcd_writes_chains_back(generator):
    energy = Gaussian.standard(2).double()
    cd = ContrastiveDivergence(MALA(0.1), n_steps=2, mode="pcd", init_fn=noise)
    buf = cd.init_state(32, generator=generator)
    assert isinstance(buf, ReplayBuffer)
    before = buf.buffer.clone()
    cd.negatives(energy, torch.zeros(32, 2, dtype=torch.float64), buf, generator=generator)
    assert not torch.equal(before, buf.buffer)


def test_loss_gradient_is_data_minus_model_gradient(generator):
    """d/dtheta [mean E(x+) - mean E(x-)] equals the difference of mean gradients."""
    energy = MLPEnergy(2, hidden=(8,)).double()
    cd = ContrastiveDivergence(Langevin(0.01), n_steps=2, mode="cd")
    x = torch.randn(10, 2, dtype=torch.float64, generator=generator)
    g_state = generator.get_state()
    loss, _, _ = cd(energy, x, None, generator=generator)
    grads = torch.autograd.grad(loss, list(energy.parameters()))
    generator.set_state(g_state)
    x_neg, _ = cd.negatives(energy, x, None, generator=generator)
    pos = torch.autograd.grad(energy(x).mean(), list(energy.parameters()))
    neg = torch.autograd.grad(energy(x_neg).mean(), list(energy.parameters()))
    for g, p, n in zip(grads, pos, neg, strict=True):
        torch.testing.assert_close(g, p - n)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="mode"):
        ContrastiveDivergence(Langevin(0.1), mode="bogus")
    with pytest.raises(ValueError, match="init_fn"):
        ContrastiveDivergence(Langevin(0.1), mode="pcd")
    with pytest.raises(ValueError, match="alpha"):
        ContrastiveDivergence(Langevin(0.1), mode="cd", alpha=-1)


@pytest.mark.slow
def test_pcd_fits_gaussian_mean_and_covariance():
    """PCD with MALA recovers a correlated Gaussian; tolerance from the data size."""
    mu = torch.tensor([1.0, -0.5], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
    target = Gaussian(mu, cov)
    n = 20_000
    data = target.sample(n, generator=torch.Generator().manual_seed(1))
    energy = Quadratic(2).double()
    chains = 500
    cd = ContrastiveDivergence(MALA(0.3), n_steps=3, mode="pcd", init_fn=noise)
    state = cd.init_state(chains, generator=torch.Generator().manual_seed(2))
    settings = TrainSettings(
        steps=600,
        batch_size=chains,
        lr=2e-2,
        lr_schedule="cosine",
        warmup_steps=20,
        checkpoint_every=0,
        seed=3,
    )
    fit(energy, data, cd, settings, state=state, progress=False)
    cov_hat = torch.linalg.inv(energy.precision().detach())
    # The MLE from n points has SE sd/sqrt(n) for the mean and ~sd^2 sqrt(2/n) for
    # variances; PCD adds its own Monte Carlo noise, so allow 6 x that plus the
    # noise of the final negatives (SE ~ sd / sqrt(chains) per update, averaged
    # by the decaying learning rate).
    se_mean = torch.sqrt(torch.diagonal(cov) / n) + torch.sqrt(torch.diagonal(cov) / chains)
    assert torch.all((energy.mean.detach() - mu).abs() < 6 * se_mean), (energy.mean, mu, se_mean)
    se_cov = cov.diagonal().max() * (math.sqrt(2 / n) + math.sqrt(2 / chains))
    assert torch.all((cov_hat - cov).abs() < 6 * se_cov), (cov_hat, cov, se_cov)

"""Improved contrastive divergence (Du et al. 2021): the KL term's gradient flows through
the last sampler step with the energy frozen, checked against an independent float64
computation; off by default; still fits a Gaussian."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from ebmlab.energies import Energy, Gaussian, MLPEnergy
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.samplers import HMC, MALA, Langevin
from ebmlab.train import TrainSettings, fit


def energy64() -> MLPEnergy:
    torch.manual_seed(0)
    return MLPEnergy(2, hidden=(8, 8), activation="softplus", base_scale=2.0).double()


def batch() -> torch.Tensor:
    return torch.randn(12, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def _grads(loss: torch.Tensor, energy: nn.Module) -> list[torch.Tensor]:
    """Parameter gradients, zeros for parameters the loss does not depend on."""
    params = list(energy.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def _kl_reference(energy: nn.Module, x_last: torch.Tensor) -> torch.Tensor:
    """mean E_frozen(x) - D mean log(nearest other sample), E's parameters frozen."""
    frozen = copy.deepcopy(energy).requires_grad_(False)
    sq = (x_last[:, None, :] - x_last[None, :, :]).pow(2).sum(-1)
    eye = torch.eye(len(x_last), dtype=torch.bool)
    d = sq.masked_fill(eye, math.inf).sqrt()  # both samples of a pair carry the gradient
    return frozen(x_last).mean() - x_last.shape[1] * d.min(1).values.log().mean()


def test_entropy_gradient_of_mutual_nearest_neighbours():
    """Two samples are each other's nearest neighbour: H = D log |x0 - x1| (D = 2 here),
    so dH/dx0 = D (x0 - x1) / |x0 - x1|^2 in full, not half of it."""
    cd = ContrastiveDivergence(Langevin(0.01), n_steps=1, mode="cd", kl_weight=1.0)
    x = torch.tensor([[0.3, -0.2], [1.1, 0.4]], dtype=torch.float64, requires_grad=True)
    target = Gaussian.standard(2, dtype=torch.float64)
    surrogate, _ = cd._kl_term(target, x)
    (got,) = torch.autograd.grad(surrogate, x)
    diff = (x[0] - x[1]).detach()
    d_entropy = 2 * diff / diff.pow(2).sum()
    want = x.detach() / 2 - torch.stack([d_entropy, -d_entropy])  # grad of mean E = x / n
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("sampler", [Langevin(0.01), MALA(0.05)], ids=["langevin", "mala"])
def test_kl_gradient_matches_independent_computation(sampler):
    """grad(loss with KL) - grad(loss without) equals the gradient of the KL estimate of
    x2(theta) = x1 - eps grad_x E_theta(x1) + noise (MALA: only for accepted chains),
    computed here from a deep-copied, frozen energy and the redrawn noise."""
    energy, x = energy64(), batch()
    eps = sampler.step_size
    with_kl = ContrastiveDivergence(sampler, n_steps=2, mode="cd", kl_weight=0.7)
    plain = ContrastiveDivergence(sampler, n_steps=2, mode="cd")
    loss_kl, diag_kl, _ = with_kl(energy, x, None, generator=torch.Generator().manual_seed(3))
    loss_0, diag_0, _ = plain(energy, x, None, generator=torch.Generator().manual_seed(3))
    # Same random draws: the contrastive part is unchanged.
    torch.testing.assert_close(diag_kl.energy_neg, diag_0.energy_neg)
    torch.testing.assert_close(diag_kl.acceptance_rate, diag_0.acceptance_rate)
    assert float(diag_0.kl) == 0.0
    kl_grads = [
        a - b for a, b in zip(_grads(loss_kl, energy), _grads(loss_0, energy), strict=True)
    ]

    # Replay the chain: one step, then the last step's noise drawn as the sampler draws it.
    g = torch.Generator().manual_seed(3)
    state = sampler.init(x, energy)
    state, _ = sampler.step(state, energy, generator=g)
    x1 = state.x
    before = g.get_state()
    z = torch.randn(x1.shape, generator=g, dtype=x1.dtype)
    g.set_state(before)
    last, info = sampler.step(state, energy, generator=g)
    x1_leaf = x1.clone().requires_grad_(True)
    (grad_e,) = torch.autograd.grad(energy(x1_leaf).sum(), x1_leaf, create_graph=True)
    sigma = sampler.noise_scale if isinstance(sampler, Langevin) else math.sqrt(2 * eps)
    x2 = x1 - eps * grad_e + sigma * z
    if isinstance(sampler, MALA):
        x2 = torch.where(info.is_accepted[:, None], x2, x1)
    torch.testing.assert_close(x2.detach(), last.x)
    reference = _kl_reference(energy, x2)
    torch.testing.assert_close(diag_kl.kl, reference.detach())
    for got, want in zip(kl_grads, _grads(0.7 * reference, energy), strict=True):
        torch.testing.assert_close(got, want)


def test_off_by_default_and_invalid_settings():
    energy, x = energy64(), batch()
    cd = ContrastiveDivergence(Langevin(0.01), n_steps=3, mode="cd")
    assert cd.kl_weight == 0.0 and "kl_weight" not in repr(cd)
    _, diag, _ = cd(energy, x, None, generator=torch.Generator().manual_seed(0))
    assert float(diag.kl) == 0.0
    assert "kl_weight=0.5" in repr(ContrastiveDivergence(MALA(0.1), mode="cd", kl_weight=0.5))
    with pytest.raises(ValueError, match="Langevin or MALA"):
        ContrastiveDivergence(HMC(0.1), mode="cd", kl_weight=1.0)
    with pytest.raises(ValueError, match="n_steps >= 1"):
        ContrastiveDivergence(MALA(0.1), n_steps=0, mode="cd", kl_weight=1.0)
    with pytest.raises(ValueError, match="kl_weight must be"):
        ContrastiveDivergence(MALA(0.1), mode="cd", kl_weight=-1.0)


def test_clamped_coordinates_do_not_move_with_theta():
    """With Langevin(clamp=...), a coordinate held at the bound gets no KL gradient path."""
    energy = energy64()
    x = batch() * 3
    sampler = Langevin(0.5, clamp=(-1.0, 1.0))
    cd = ContrastiveDivergence(sampler, n_steps=1, mode="cd", kl_weight=1.0)
    loss, diag, _ = cd(energy, x, None, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and torch.isfinite(diag.kl)
    _grads(loss, energy)  # differentiable end to end


class Quadratic(Energy):
    """Learnable Gaussian energy (x - m)^T L L^T (x - m) / 2."""

    def __init__(self, d: int) -> None:
        super().__init__(d)
        self.mean = nn.Parameter(torch.zeros(d, dtype=torch.float64))
        self.raw = nn.Parameter(torch.eye(d, dtype=torch.float64))

    def precision(self) -> torch.Tensor:
        chol = torch.tril(self.raw)
        return chol @ chol.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x - self.mean
        return 0.5 * ((r @ self.precision()) * r).sum(-1)


@pytest.mark.slow
def test_improved_pcd_fits_gaussian():
    """PCD with MALA and the KL term still recovers a correlated Gaussian (same tolerance
    as the plain PCD test: 6 x the standard errors of the data and of the chains)."""
    mu = torch.tensor([1.0, -0.5], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
    n, chains = 20_000, 256
    data = Gaussian(mu, cov).sample(n, generator=torch.Generator().manual_seed(1))

    def noise(k: int, g: torch.Generator | None) -> torch.Tensor:
        return torch.randn(k, 2, generator=g, dtype=torch.float64) * 2

    energy = Quadratic(2)
    cd = ContrastiveDivergence(MALA(0.3), n_steps=2, mode="pcd", init_fn=noise, kl_weight=0.1)
    state = cd.init_state(chains, generator=torch.Generator().manual_seed(2))
    settings = TrainSettings(
        steps=300, batch_size=chains, lr=3e-2, warmup_steps=20, checkpoint_every=0, seed=3
    )
    fit(energy, data, cd, settings, state=state, progress=False)
    cov_hat = torch.linalg.inv(energy.precision().detach())
    se_mean = torch.sqrt(torch.diagonal(cov) / n) + torch.sqrt(torch.diagonal(cov) / chains)
    print(energy.mean.detach(), cov_hat)
    assert torch.all((energy.mean.detach() - mu).abs() < 6 * se_mean)
    se_cov = cov.diagonal().max() * (math.sqrt(2 / n) + math.sqrt(2 / chains))
    assert torch.all((cov_hat - cov).abs() < 6 * se_cov)

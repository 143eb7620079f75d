"""Fully visible Boltzmann machine: energy, exact log Z, Gibbs sampling, CD training."""

from __future__ import annotations

import pytest
import torch

from ebmlab.boltzmann import BoltzmannMachine, enumerate_binary, fit_cd
from helpers import assert_tv_below

F64 = torch.float64


def random_bm(n: int, values: str, seed: int, scale: float = 0.8) -> BoltzmannMachine:
    g = torch.Generator().manual_seed(seed)
    bm = BoltzmannMachine(n, values=values, weight_scale=scale, generator=g, dtype=F64)
    with torch.no_grad():
        bm.bias.normal_(0, 0.5, generator=g)
    return bm


def all_states(n: int, values: str) -> torch.Tensor:
    s = enumerate_binary(n, dtype=F64)
    return 2 * s - 1 if values == "spin" else s


@pytest.mark.parametrize("values", ["binary", "spin"])
def test_energy_and_exact_log_z(values):
    bm = random_bm(5, values, 0)
    w = bm.coupling.detach()
    torch.testing.assert_close(w, w.t())
    assert float(w.diagonal().abs().max()) == 0.0
    x = all_states(5, values)
    brute = (-(x @ bm.bias) - 0.5 * torch.einsum("ni,ij,nj->n", x, w, x)).detach()
    torch.testing.assert_close(bm(x).detach(), brute)
    log_z = float(torch.logsumexp(-brute, 0))
    assert bm.exact_log_z(chunk_size=7).value == pytest.approx(log_z, rel=1e-12)
    assert float(bm.log_prob(x).exp().sum()) == pytest.approx(1.0, rel=1e-12)
    assert bm.free_energy(x).shape == (32,)


@pytest.mark.slow
@pytest.mark.parametrize("values", ["binary", "spin"])
def test_gibbs_matches_exact_probabilities(values):
    # Spins double the field range: weaker couplings keep the two modes mixing.
    bm = random_bm(4, values, 1, scale=1.2 if values == "binary" else 0.4)
    g = torch.Generator().manual_seed(1)
    x = bm.sample(20_000, n_sweeps=25, generator=g)
    bits = (x > 0).to(F64)
    idx = (bits * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=F64)).sum(1).long()
    exact = bm.log_prob(all_states(4, values)).exp()
    assert_tv_below(torch.bincount(idx, minlength=16), exact)


def test_pcd_training_matches_the_target_moments():
    """Data from a known machine: PCD (autograd gradients) lowers the exact KL."""
    target = random_bm(6, "binary", 2, scale=1.5)
    states = all_states(6, "binary")
    p = target.log_prob(states).exp()
    g = torch.Generator().manual_seed(2)
    data = states[torch.multinomial(p, 3000, replacement=True, generator=g)]
    model = BoltzmannMachine(6, dtype=F64, generator=g)

    def kl() -> float:
        return float((p * (p.log() - model.log_prob(states))).sum())

    kl0 = kl()
    fit_cd(model, data, n_epochs=8, batch_size=100, learning_rate=0.2, momentum=0.5, generator=g)
    assert kl() < 0.1 * kl0, (kl0, kl())


def test_errors_and_repr():
    with pytest.raises(ValueError, match="values must be one of"):
        BoltzmannMachine(3, values="ternary")
    with pytest.raises(ValueError, match="n_units must be >= 1"):
        BoltzmannMachine(0)
    with pytest.raises(ValueError, match="more than 26"):
        BoltzmannMachine(27).exact_log_z()
    assert "n_units=3, values='spin'" in repr(BoltzmannMachine(3, values="spin"))

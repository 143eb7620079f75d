"""Gibbs-with-gradients: exact laws on spin and binary energies, invariance, contract."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from ebmlab.energies import Energy
from ebmlab.lattice import IsingModel
from ebmlab.partition import exact_log_probs
from ebmlab.samplers import GibbsWithGradients, GWGInfo, GWGState, run
from helpers import assert_binomial_proportions, assert_tv_below

F64 = torch.float64


class BinaryQuadratic(Energy):
    """A Boltzmann machine on {0, 1}^D: ``E(x) = -x^T W x / 2 - b^T x``."""

    domain = "binary"

    def __init__(self, d: int, generator: torch.Generator):
        super().__init__(d)
        w = torch.randn(d, d, generator=generator, dtype=F64) * 0.6
        self.w = nn.Parameter((w + w.T).fill_diagonal_(0.0) / 2)
        self.b = nn.Parameter(torch.randn(d, generator=generator, dtype=F64) * 0.5)

    def forward(self, x: Tensor) -> Tensor:
        return -0.5 * ((x @ self.w) * x).sum(1) - x @ self.b


def state_index(x: Tensor, spin: bool) -> Tensor:
    digits = ((x > 0) if spin else (x > 0.5)).reshape(x.shape[0], -1).long()
    return (digits * 2 ** torch.arange(digits.shape[1] - 1, -1, -1)).sum(1)


def check(energy, x, spin):
    states, log_p = exact_log_probs(energy)
    p = log_p.exp()
    counts = torch.bincount(state_index(x, spin), minlength=p.numel())
    assert_tv_below(counts, p)
    # Marginals of every variable.
    for i in range(states[0].numel()):
        on = states.reshape(len(states), -1)[:, i] > (0 if spin else 0.5)
        p_on = float(p[on].sum())
        k = int(((x.reshape(len(x), -1)[:, i]) > (0 if spin else 0.5)).sum())
        assert_binomial_proportions([k, len(x) - k], [p_on, 1 - p_on])


@pytest.mark.slow
def test_spin_ising_from_exact_samples_and_long_run(generator):
    model = IsingModel.lattice(3, beta=0.35, field=0.1).double()
    states, log_p = exact_log_probs(model)
    x0 = states[torch.multinomial(log_p.exp(), 6000, replacement=True, generator=generator)]
    check(model, run(GibbsWithGradients(), model, x0, 5, generator=generator).state.x, True)
    # From a bad start (all down, against the field), mixing to the same law.
    x = run(
        GibbsWithGradients(), model, -torch.ones(6000, 3, 3, dtype=F64), 300, generator=generator
    )
    check(model, x.state.x, True)


@pytest.mark.slow
def test_binary_boltzmann_machine(generator):
    energy = BinaryQuadratic(8, generator)
    x0 = torch.zeros(6000, 8, dtype=F64)
    out = run(GibbsWithGradients(), energy, x0, 150, generator=generator)
    assert float(out.acceptance_rate.mean()) > 0.3
    check(energy, out.state.x, False)


def test_contract(generator):
    energy = BinaryQuadratic(5, generator)
    sampler = GibbsWithGradients("binary")
    state = sampler.init(torch.zeros(4, 5, dtype=F64), energy)
    assert isinstance(state, GWGState)
    state, info = sampler.step(state, energy, generator=generator)
    assert isinstance(info, GWGInfo)
    assert torch.allclose(state.energy, energy(state.x).detach())
    # Exactly one coordinate differs from the start where a move was accepted.
    changed = (state.x != 0).sum(1)
    assert torch.equal(changed, info.is_accepted.long())
    assert bool(((info.acceptance_rate >= 0) & (info.acceptance_rate <= 1)).all())
    with pytest.raises(ValueError, match="domain"):
        GibbsWithGradients("ternary")

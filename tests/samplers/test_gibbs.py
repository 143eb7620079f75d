"""Checkerboard Gibbs and Metropolis on Ising and Potts models: exact enumeration,
invariance, the packed fast path and its thresholds, contracts and errors."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ebmlab.lattice import IsingModel, PottsModel
from ebmlab.partition import exact_log_probs
from ebmlab.samplers import (
    DISCRETE_SAMPLERS,
    BlockGibbs,
    CheckerboardGibbs,
    Metropolis,
    SpinInfo,
    SpinState,
    run,
)
from ebmlab.samplers._lattice import _Thresholds, flip_probabilities, threads_for
from helpers import assert_binomial_proportions, assert_tv_below

F64 = torch.float64


def state_index(x: Tensor, q: int) -> Tensor:
    """Index of each configuration in ``enumerate_states`` order (first site most significant)."""
    flat = x.reshape(x.shape[0], -1).round()
    digits = (flat > 0).long() if q == 2 else flat.long()
    weights = q ** torch.arange(digits.shape[1] - 1, -1, -1)
    return (digits * weights).sum(1)


def end_states(model, sampler, n_chains: int, n_steps: int, generator, x0=None) -> Tensor:
    if x0 is None:
        fill = 1.0 if model.n_states == 2 else 0.0
        x0 = torch.full((n_chains, *model.event_shape), fill, dtype=F64)
    return run(sampler, model, x0, n_steps, generator=generator).state.x


def assert_exact(model, x: Tensor) -> None:
    """End states against the exact distribution: TV over states, proportions per energy level."""
    states, log_p = exact_log_probs(model)
    p = log_p.exp()
    counts = torch.bincount(state_index(x, model.n_states), minlength=p.numel())
    assert_tv_below(counts, p)
    # Grouped by energy level: few categories, a sharp test of the Boltzmann weights.
    with torch.no_grad():
        h = model.hamiltonian(states).round(decimals=6)
    levels, inverse = torch.unique(h, return_inverse=True)
    level_p = torch.zeros(len(levels), dtype=F64).index_add_(0, inverse, p)
    level_n = torch.zeros(len(levels), dtype=F64).index_add_(0, inverse, counts.double())
    assert_binomial_proportions(level_n, level_p)


# Models covering every path: odd periodic (greedy colouring), packed (even
# periodic, field, antiferromagnet, 3D, per-chain beta), open with per-site
# field, a graph with mixed couplings, Potts.
def ising_models() -> dict[str, IsingModel]:
    graph = torch.tensor(
        [[0, 1.0, -0.5, 0], [1.0, 0, 0.3, 0.8], [-0.5, 0.3, 0, 1.2], [0, 0.8, 1.2, 0]]
    )
    return {
        "odd-periodic-3x3": IsingModel.lattice(3, beta=0.35),
        "packed-2x4-field": IsingModel.lattice((2, 4), beta=0.4, field=0.2),
        "packed-4x2-antiferro": IsingModel.lattice((4, 2), beta=0.4, coupling=-0.7, field=0.1),
        "packed-2x2x2": IsingModel.lattice(2, dim=3, beta=0.25, field=-0.1),
        "open-3x3-site-field": IsingModel.lattice(
            3, beta=0.5, periodic=False, field=torch.linspace(-0.5, 0.5, 9).view(3, 3)
        ),
        "graph": IsingModel.graph(graph, beta=0.9, field=torch.tensor([0.1, -0.2, 0.3, 0.0])),
    }


@pytest.mark.slow
@pytest.mark.parametrize("sampler_cls", [CheckerboardGibbs, Metropolis])
@pytest.mark.parametrize("name", list(ising_models()))
def test_ising_matches_enumeration(sampler_cls, name, generator):
    model = ising_models()[name].double()
    x = end_states(model, sampler_cls(sweeps_per_step=4), 8000, 8, generator)
    assert_exact(model, x)


@pytest.mark.slow
@pytest.mark.parametrize("sampler_cls", [CheckerboardGibbs, Metropolis])
def test_potts_matches_enumeration(sampler_cls, generator):
    model = PottsModel.lattice(
        (2, 3), n_states=3, beta=0.8, periodic=False, field=torch.tensor([0.3, -0.2, 0.0])
    ).double()
    x = end_states(model, sampler_cls(sweeps_per_step=4), 8000, 8, generator)
    assert_exact(model, x)


@pytest.mark.slow
@pytest.mark.parametrize("sampler_cls", [CheckerboardGibbs, Metropolis])
def test_per_chain_beta_packed(sampler_cls, generator):
    # Two temperatures in one batch on the packed path: each half matches its own law.
    betas = torch.cat([torch.full((6000,), 0.15), torch.full((6000,), 0.35)])
    model = IsingModel.lattice((2, 4), beta=betas, field=0.1).double()
    x0 = torch.randint(0, 2, (12000, 2, 4), generator=generator).double() * 2 - 1
    x = end_states(model, sampler_cls(sweeps_per_step=4), 12000, 8, generator, x0=x0)
    for half, beta in ((slice(0, 6000), 0.15), (slice(6000, None), 0.35)):
        assert_exact(IsingModel.lattice((2, 4), beta=beta, field=0.1).double(), x[half])


@pytest.mark.slow
@pytest.mark.parametrize("sampler_cls", [CheckerboardGibbs, Metropolis])
def test_invariance_from_exact_samples(sampler_cls, generator):
    # One sweep from exact draws must keep the exact law (catches wrong acceptance).
    model = IsingModel.lattice((2, 4), beta=0.5, field=0.3).double()
    states, log_p = exact_log_probs(model)
    x0 = states[torch.multinomial(log_p.exp(), 6000, replacement=True, generator=generator)]
    x = end_states(model, sampler_cls(), 6000, 1, generator, x0=x0)
    assert_exact(model, x)


@pytest.mark.parametrize("kind", ["gibbs", "metropolis"])
@pytest.mark.parametrize("n_rows", [1, 3])
def test_thresholds_have_exact_law(kind, n_rows, generator):
    # k = #{c : P[c] <= u} is categorical with P(k = j) = P[j] - P[j - 1].
    probs = flip_probabilities(
        torch.linspace(0.3, 0.9, n_rows), 1.0, torch.linspace(-0.3, 0.4, n_rows), 4, kind
    )
    shape = (4, 2, n_rows, 32, 32)
    k = _Thresholds(probs, shape).draw(4, generator)
    for s in range(probs.shape[1]):
        for r in range(n_rows):
            counts = torch.bincount(k[s][:, :, r].reshape(-1).long(), minlength=6)
            p = probs[r, s]
            exact = torch.cat([p[:1], p[1:] - p[:-1], 1 - p[-1:]])
            assert_binomial_proportions(counts, exact)


def test_thresholds_settle_ties_exactly(generator):
    # A probability just above a multiple of 2^-16 makes ties frequent enough to matter
    # at this sample size if they were settled wrongly: P = (F + 0.5) / 65536.
    p = torch.tensor([[[1.5 / 65536, 0.5, 1.0 - 2.5 / 65536]]], dtype=F64)
    shape = (1, 1, 1, 512, 1024)
    k = _Thresholds(p, shape).draw(1, generator)[0].reshape(-1).long()
    counts = torch.bincount(k, minlength=4)
    exact = torch.tensor([1.5 / 65536, 0.5 - 1.5 / 65536, 0.5 - 2.5 / 65536, 2.5 / 65536])
    assert_binomial_proportions(counts, exact)


def test_packed_and_generic_paths_agree_in_law(generator):
    # Same model through the packed kernel (uniform field) and the generic one
    # (the same field given per site): the magnetization histograms agree.
    shape = (4, 4)
    fast = IsingModel.lattice(shape, beta=0.3, field=0.1).double()
    slow = IsingModel.lattice(shape, beta=0.3, field=torch.full(shape, 0.1)).double()
    n = 4000
    x_fast = end_states(fast, CheckerboardGibbs(sweeps_per_step=10), n, 2, generator)
    x_slow = end_states(slow, CheckerboardGibbs(sweeps_per_step=10), n, 2, generator)
    m_fast = x_fast.reshape(n, -1).sum(1).long() + 16
    m_slow = x_slow.reshape(n, -1).sum(1).long() + 16
    c_fast = torch.bincount(m_fast, minlength=33).double()
    c_slow = torch.bincount(m_slow, minlength=33).double()
    pooled = (c_fast + c_slow) / (2 * n)
    keep = pooled > 0
    assert_binomial_proportions(c_fast[keep], pooled[keep] / pooled[keep].sum(), z=5.0)


def test_contract_shapes_types_and_values(generator):
    model = IsingModel.lattice(6, beta=0.4)
    for sampler_cls in (CheckerboardGibbs, Metropolis):
        sampler = sampler_cls(sweeps_per_step=2)
        state = sampler.init(torch.ones(3, 6, 6), model)
        assert isinstance(state, SpinState)
        state, info = sampler.step(state, model, generator=generator)
        assert isinstance(info, SpinInfo)
        assert state.x.shape == (3, 6, 6) and state.x.dtype == torch.float32
        assert bool(((state.x == 1) | (state.x == -1)).all())
        assert info.acceptance_rate.shape == (3,)
        assert bool(((info.acceptance_rate >= 0) & (info.acceptance_rate <= 1)).all())
    potts = PottsModel.lattice(5, n_states=4, beta=0.3)
    state, _ = CheckerboardGibbs().step(
        CheckerboardGibbs().init(torch.zeros(2, 5, 5), potts), potts
    )
    assert set(state.x.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}


def test_reproducible_with_generator():
    model = IsingModel.lattice(8, beta=0.44)
    outs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(3)
        sampler = CheckerboardGibbs(sweeps_per_step=3)
        state, _ = sampler.step(sampler.init(torch.ones(2, 8, 8), model), model, generator=g)
        outs.append(state.x)
    assert torch.equal(outs[0], outs[1])


def test_zero_temperature_limits(generator):
    # beta = 0: every spin is a fair coin after one sweep; huge beta from the ground
    # state: nothing moves.
    hot = IsingModel.lattice(16, beta=0.0)
    x = end_states(hot, CheckerboardGibbs(), 50, 1, generator)
    up = int((x > 0).sum())
    assert_binomial_proportions([up, x.numel() - up], [0.5, 0.5])
    cold = IsingModel.lattice(16, beta=50.0)
    for sampler in (CheckerboardGibbs(), Metropolis()):
        state, info = sampler.step(sampler.init(torch.ones(4, 16, 16), cold), cold)
        assert bool((state.x == 1).all()) and bool((info.acceptance_rate == 0).all())


def test_block_gibbs_generic_scan(generator):
    # Two blocks of a product of Bernoullis: the scan samples their exact marginals.
    def block(i: int, p: float):
        def update(x: Tensor, g: torch.Generator | None) -> Tensor:
            x = x.clone()
            x[:, i] = (torch.rand(x.shape[0], generator=g) < p).to(x)
            return x

        return update

    sampler = BlockGibbs([block(0, 0.2), block(1, 0.7)])
    x = run(sampler, None, torch.zeros(5000, 2), 1, generator=generator).state.x
    assert_binomial_proportions([int(x[:, 0].sum()), int((1 - x[:, 0]).sum())], [0.2, 0.8])
    assert_binomial_proportions([int(x[:, 1].sum()), int((1 - x[:, 1]).sum())], [0.7, 0.3])
    with pytest.raises(ValueError, match="updates"):
        BlockGibbs([])


def test_errors_name_the_argument():
    model = IsingModel.lattice(4)
    with pytest.raises(ValueError, match="sweeps_per_step"):
        CheckerboardGibbs(sweeps_per_step=0)
    with pytest.raises(ValueError, match=r"x must have shape \(n_chains, 4, 4\)"):
        CheckerboardGibbs().init(torch.ones(2, 5, 5), model)
    with pytest.raises(TypeError, match="spin model"):
        Metropolis().init(torch.ones(2, 4), lambda x: x.sum(1))
    per_chain = IsingModel.lattice(4, beta=torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="beta has 2 chains"):
        CheckerboardGibbs().init(torch.ones(3, 4, 4), per_chain)


def test_registry_and_thread_choice():
    assert set(DISCRETE_SAMPLERS) == {"gibbs", "metropolis", "wolff", "swendsen-wang", "gwg"}
    assert threads_for(64 * 64) == 1

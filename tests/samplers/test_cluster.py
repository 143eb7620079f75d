"""Swendsen-Wang and Wolff: exact enumeration on Ising and Potts models (fields,
antiferromagnets, graphs), invariance, connected components, contracts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from ebmlab.lattice import IsingModel, PottsModel
from ebmlab.partition import exact_log_probs
from ebmlab.samplers import ClusterInfo, SpinState, SwendsenWang, Wolff, connected_components, run
from helpers import assert_binomial_proportions, assert_tv_below

F64 = torch.float64
SAMPLERS = [SwendsenWang, Wolff]


def state_index(x, q):
    flat = x.reshape(x.shape[0], -1).round()
    digits = (flat > 0).long() if q == 2 else flat.long()
    return (digits * q ** torch.arange(digits.shape[1] - 1, -1, -1)).sum(1)


def assert_exact(model, x):
    states, log_p = exact_log_probs(model)
    p = log_p.exp()
    counts = torch.bincount(state_index(x, model.n_states), minlength=p.numel())
    assert_tv_below(counts, p)
    with torch.no_grad():
        h = model.hamiltonian(states).round(decimals=6)
    levels, inverse = torch.unique(h, return_inverse=True)
    level_p = torch.zeros(len(levels), dtype=F64).index_add_(0, inverse, p)
    level_n = torch.zeros(len(levels), dtype=F64).index_add_(0, inverse, counts.double())
    assert_binomial_proportions(level_n, level_p)


def models():
    graph = torch.tensor(
        [[0, 1.0, -0.5, 0], [1.0, 0, 0.3, 0.8], [-0.5, 0.3, 0, 1.2], [0, 0.8, 1.2, 0]]
    )
    return {
        "ising-3x3": IsingModel.lattice(3, beta=0.35),
        "ising-2x4-field": IsingModel.lattice((2, 4), beta=0.3, field=0.2),
        "ising-antiferro": IsingModel.lattice((4, 2), beta=0.3, coupling=-0.7),
        "ising-open-site-field": IsingModel.lattice(
            3, beta=0.4, periodic=False, field=torch.linspace(-0.5, 0.5, 9).view(3, 3)
        ),
        "ising-graph": IsingModel.graph(graph, beta=0.9, field=torch.tensor([0.1, -0.2, 0.3, 0])),
        "potts-2x3": PottsModel.lattice((2, 3), n_states=3, beta=0.8, periodic=False),
        "potts-2x2-field": PottsModel.lattice(
            2, n_states=3, beta=0.6, field=torch.tensor([0.3, -0.2, 0.0])
        ),
    }


@pytest.mark.slow
@pytest.mark.parametrize("sampler_cls", SAMPLERS)
@pytest.mark.parametrize("name", list(models()))
def test_matches_enumeration(sampler_cls, name, generator):
    model = models()[name].double()
    n, steps = 6000, (12 if sampler_cls is SwendsenWang else 40)
    fill = 1.0 if model.n_states == 2 else 0.0
    x0 = torch.full((n, *model.event_shape), fill, dtype=F64)
    x = run(sampler_cls(), model, x0, steps, generator=generator).state.x
    assert_exact(model, x)


@pytest.mark.parametrize("sampler_cls", SAMPLERS)
def test_invariance_from_exact_samples(sampler_cls, generator):
    model = IsingModel.lattice((2, 4), beta=0.45, field=0.25).double()
    states, log_p = exact_log_probs(model)
    x0 = states[torch.multinomial(log_p.exp(), 6000, replacement=True, generator=generator)]
    x = run(sampler_cls(), model, x0, 1, generator=generator).state.x
    assert_exact(model, x)


def test_connected_components_match_scipy(generator):
    for n, m in [(50, 30), (200, 400), (1000, 900)]:
        src = torch.randint(n, (m,), generator=generator)
        dst = torch.randint(n, (m,), generator=generator)
        active = torch.rand(m, generator=generator) < 0.7
        labels = connected_components(n, src, dst, active)
        keep = active.numpy()
        adj = coo_matrix((np.ones(keep.sum()), (src.numpy()[keep], dst.numpy()[keep])), (n, n))
        _, ref = scipy_components(adj, directed=False)
        # Same partition, labelled by each component's smallest node.
        smallest = {}
        for i, c in enumerate(ref):
            smallest.setdefault(int(c), i)
        assert labels.tolist() == [smallest[int(c)] for c in ref]


def test_large_lattice_clusters_and_contract(generator):
    # Near T_c on 64 x 64: clusters span the lattice, one step changes many spins.
    model = IsingModel.lattice(64, beta=0.44)
    for sampler in (SwendsenWang(), Wolff()):
        state = sampler.init(torch.ones(2, 64, 64), model)
        assert isinstance(state, SpinState)
        state, info = sampler.step(state, model, generator=generator)
        assert isinstance(info, ClusterInfo) and info.acceptance_rate.shape == (2,)
        assert state.x.shape == (2, 64, 64)
        assert bool(((state.x == 1) | (state.x == -1)).all())
        assert bool((info.acceptance_rate > 0).all())


def test_potts_negative_coupling_is_refused():
    model = PottsModel.lattice(4, n_states=3, coupling=-1.0)
    with pytest.raises(ValueError, match="J >= 0"):
        SwendsenWang().step(SwendsenWang().init(torch.zeros(1, 4, 4), model), model)

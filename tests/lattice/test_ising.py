"""Ising and Potts models: energies, conditionals, structure, exact references, errors."""

from __future__ import annotations

import math

import pytest
import torch

from ebmlab.lattice import (
    CRITICAL_TEMPERATURE,
    IsingModel,
    PottsModel,
    estimate_observables,
    greedy_coloring,
    kaufman_log_z,
    kaufman_observables,
    onsager_energy,
    onsager_magnetization,
    reweight_observables,
)
from ebmlab.partition import exact_log_probs, exact_log_z

F64 = torch.float64


def explicit_hamiltonian(x, shape, coupling, field, periodic):
    """Bond by bond, in Python: the reference for the vectorized energies."""
    out = []
    grid = x.reshape(x.shape[0], *shape)
    d = len(shape)
    for s in grid:
        h = 0.0
        for pos in torch.cartesian_prod(*[torch.arange(n) for n in shape]).reshape(-1, d):
            for a in range(d):
                nb = pos.clone()
                nb[a] += 1
                if nb[a] == shape[a]:
                    if not periodic:
                        continue
                    nb[a] = 0
                h -= coupling * float(s[tuple(pos)] * s[tuple(nb)])
        h -= float((s * field).sum())
        out.append(h)
    return torch.tensor(out, dtype=F64)


@pytest.mark.parametrize(
    ("shape", "periodic"), [((4, 4), True), ((3, 5), False), ((3, 3), True), ((2, 3, 4), True)]
)
def test_lattice_energy_matches_bond_sum(shape, periodic, generator):
    field = torch.randn(shape, generator=generator, dtype=F64)
    model = IsingModel.lattice(shape, coupling=0.7, field=field, beta=0.3, periodic=periodic)
    x = torch.randint(0, 2, (5, *shape), generator=generator).to(F64) * 2 - 1
    ref = explicit_hamiltonian(x, shape, 0.7, field, periodic)
    assert torch.allclose(model.hamiltonian(x), ref)
    assert torch.allclose(model(x), 0.3 * ref)


def test_graph_model_equals_lattice_model(generator):
    # The same couplings as a dense matrix give the same energies and local fields.
    lattice = IsingModel.lattice((3, 4), coupling=0.8, field=0.2, beta=0.5, periodic=False)
    index, weight = lattice.edges()
    dense = torch.zeros(12, 12, dtype=F64)
    dense[index[0], index[1]] = weight.double()
    dense[index[1], index[0]] = weight.double()
    graph = IsingModel.graph(dense, field=0.2, beta=0.5)
    sparse = IsingModel.graph(dense.to_sparse(), field=0.2, beta=0.5)
    x = torch.randint(0, 2, (6, 3, 4), generator=generator).to(F64) * 2 - 1
    flat = x.reshape(6, 12)
    assert torch.allclose(lattice.double()(x), graph.double()(flat))
    assert torch.allclose(sparse.double()(flat), graph.double()(flat))
    assert torch.allclose(
        lattice.double().local_field(x).reshape(6, 12), graph.double().local_field(flat)
    )


def test_local_field_gives_exact_conditionals(generator):
    # p(s_i = +1 | rest) = sigmoid(2 beta h_i): check against energy differences.
    model = IsingModel.lattice((3, 4), coupling=-0.6, field=0.3, beta=0.7).double()
    x = torch.randint(0, 2, (4, 3, 4), generator=generator).to(F64) * 2 - 1
    h = model.local_field(x)
    for i, j in [(0, 0), (1, 2), (2, 3)]:
        up, down = x.clone(), x.clone()
        up[:, i, j], down[:, i, j] = 1.0, -1.0
        p_up = torch.sigmoid(model(down) - model(up))
        assert torch.allclose(p_up, torch.sigmoid(2 * 0.7 * h[:, i, j]))


def test_potts_energy_and_conditionals(generator):
    field = torch.randn(3, 4, 3, generator=generator, dtype=F64)
    model = PottsModel.lattice((3, 4), n_states=3, coupling=0.9, field=field, beta=0.6).double()
    x = torch.randint(0, 3, (4, 3, 4), generator=generator).to(F64)
    lf = model.local_field(x)  # (4, 3, 4, 3)
    energies = []
    for k in range(3):
        y = x.clone()
        y[:, 1, 2] = k
        energies.append(model(y))
    cond = torch.softmax(-torch.stack(energies, 1), 1)
    assert torch.allclose(cond, torch.softmax(0.6 * lf[:, 1, 2], -1))
    # q = 2 Potts equals Ising with J / 2 up to a constant (and field mapping).
    potts2 = PottsModel.lattice(4, n_states=2, coupling=1.0, beta=0.4).double()
    ising = IsingModel.lattice(4, coupling=0.5, beta=0.4).double()
    s = torch.randint(0, 2, (5, 4, 4), generator=generator).to(F64)
    diff = potts2(s) - ising(2 * s - 1)
    assert torch.allclose(diff, diff[0].expand(5))


def test_exact_log_z_and_kaufman_agree():
    for shape, beta in [((4, 4), 0.3), ((3, 4), 0.44), ((2, 4), 0.7)]:
        model = IsingModel.lattice(shape, beta=beta).double()
        exact = exact_log_z(model)
        value = float(getattr(exact, "value", exact))
        assert math.isclose(float(kaufman_log_z(*shape, float(model.beta))), value, rel_tol=1e-10)


def test_onsager_values():
    assert math.isclose(CRITICAL_TEMPERATURE, 2.269185314, rel_tol=1e-9)
    assert onsager_magnetization(2.3) == 0.0
    assert math.isclose(onsager_magnetization(1.0), 0.99927, abs_tol=1e-5)
    # At T_c: u = -sqrt(2).
    assert math.isclose(onsager_energy(CRITICAL_TEMPERATURE), -math.sqrt(2), abs_tol=1e-6)
    # Finite lattice far from T_c agrees with the infinite one; the specific heat
    # of L = 64 peaks near T_c (1 + 0.36 / L) (Ferdinand & Fisher 1969).
    out = kaufman_observables(64, 1.8)
    assert math.isclose(out["energy_per_spin"], onsager_energy(1.8), abs_tol=1e-8)
    temps = torch.linspace(2.27, 2.30, 31).tolist()
    heat = [kaufman_observables(64, t)["specific_heat"] for t in temps]
    t_peak = temps[max(range(len(temps)), key=heat.__getitem__)]
    assert abs(t_peak - CRITICAL_TEMPERATURE * (1 + 0.36 / 64)) < 0.002


def test_estimates_from_independent_series(generator):
    # Independent draws: means within their errors; chi and C are variances.
    n_steps, n_chains, n_sites, beta = 400, 16, 100, 0.5
    m = 0.5 + 0.1 * torch.randn(n_steps, n_chains, generator=generator, dtype=F64)
    e = -1.0 + 0.05 * torch.randn(n_steps, n_chains, generator=generator, dtype=F64)
    obs = estimate_observables(m, e, beta, n_sites)
    assert abs(obs.magnetization.value - 0.5) < 5 * obs.magnetization.stderr
    assert abs(obs.energy_per_spin.value + 1.0) < 5 * obs.energy_per_spin.stderr
    assert abs(obs.susceptibility.value - beta * n_sites * 0.01) < 5 * obs.susceptibility.stderr
    assert abs(obs.specific_heat.value - beta**2 * n_sites * 0.0025) < 5 * obs.specific_heat.stderr
    assert 0.5 < obs.magnetization.tau < 1.5
    # Reweighting to the same beta changes nothing.
    same = reweight_observables(m, e, beta, beta, n_sites)
    assert math.isclose(same.susceptibility.value, obs.susceptibility.value, rel_tol=1e-9)


def test_reweighting_matches_exact_small_lattice(generator):
    # Exact draws at beta0, reweighted to beta1: the energy matches the exact value at beta1.
    model = IsingModel.lattice((2, 4), beta=0.3).double()
    states, log_p = exact_log_probs(model)
    draws = states[torch.multinomial(log_p.exp(), 40000, replacement=True, generator=generator)]
    e = (model.hamiltonian(draws) / 8).reshape(-1, 16)
    m = draws.reshape(-1, 8).mean(1).reshape(-1, 16)
    out = reweight_observables(m, e, 0.3, 0.35, 8)
    _, lp1 = exact_log_probs(IsingModel.lattice((2, 4), beta=0.35).double())
    exact = float((lp1.exp() * model.hamiltonian(states)).sum() / 8)
    assert abs(out.energy_per_spin.value - exact) < 5 * out.energy_per_spin.stderr


def test_structure_colors_edges_and_repr():
    model = IsingModel.lattice((4, 6))
    black, white = model.colors()
    assert len(black) == len(white) == 12
    index, _ = model.edges()
    assert index.shape == (2, 48)
    parity = torch.zeros(24, dtype=torch.long)
    parity[white] = 1
    assert bool((parity[index[0]] != parity[index[1]]).all())
    odd = IsingModel.lattice(3).colors()
    idx, _ = IsingModel.lattice(3).edges()
    color = torch.zeros(9, dtype=torch.long)
    for c, sites in enumerate(odd):
        color[sites] = c
    assert bool((color[idx[0]] != color[idx[1]]).all()) and len(odd) >= 3
    ring = greedy_coloring(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]), 4)
    assert [c.tolist() for c in ring] == [[0, 2], [1, 3]]
    assert "lattice=(4, 6)" in repr(model) and "beta=1" in repr(model)
    per_chain = model.with_beta(torch.tensor([0.1, 0.2, 0.3]))
    assert per_chain(torch.ones(3, 4, 6)).shape == (3,)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="lattice sizes must be >= 2"):
        IsingModel.lattice(1)
    with pytest.raises(ValueError, match="dim must be 1, 2 or 3"):
        IsingModel.lattice(4, dim=4)
    with pytest.raises(ValueError, match="field must broadcast"):
        IsingModel.lattice(4, field=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="symmetric"):
        IsingModel.graph(torch.tensor([[0.0, 1.0], [0.5, 0.0]]))
    with pytest.raises(ValueError, match="zero diagonal"):
        IsingModel.graph(torch.eye(2))
    with pytest.raises(ValueError, match="n_states"):
        PottsModel.lattice(4, n_states=1)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4, 4\)"):
        IsingModel.lattice(4)(torch.ones(2, 16))

"""Hopfield networks: storage rules, recall dynamics, energies, modern retrieval."""

from __future__ import annotations

import pytest
import torch

from ebmlab.boltzmann import HopfieldNetwork, ModernHopfield

F64 = torch.float64


def patterns(p: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (p, n), generator=g).to(F64) * 2 - 1


def flip(x: torch.Tensor, frac: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(x.shape, generator=g, dtype=F64) < frac
    return torch.where(mask, -x, x)


def test_hebbian_weights_and_recall_of_few_patterns():
    xi = patterns(5, 200, 0)
    net = HopfieldNetwork(200, dtype=F64).store(xi)
    expected = xi.t() @ xi / 200
    expected.fill_diagonal_(0)
    torch.testing.assert_close(net.weight, expected)
    for mode in ("async", "sync"):
        out = net.recall(flip(xi, 0.15, 1), mode=mode, generator=torch.Generator().manual_seed(1))
        assert bool((out.states == xi).all()) and bool(out.converged.all()), mode
    assert net.n_patterns == 5 and "n_patterns=5" in repr(net)


def test_async_recall_descends_to_a_fixed_point():
    net = HopfieldNetwork(60, dtype=F64).store(patterns(20, 60, 2))  # overloaded: spurious states
    start = patterns(50, 60, 3)
    out = net.recall(start, generator=torch.Generator().manual_seed(3))
    assert bool(out.converged.all())
    # A fixed point: every unit agrees with its field (ties allowed).
    assert bool((out.states * net.local_fields(out.states) >= -1e-9).all())
    assert bool((net(out.states) <= net(start) + 1e-12).all())
    assert bool((net(out.states) < net(start)).any())


def test_sync_recall_can_cycle_while_async_converges():
    net = HopfieldNetwork(2, dtype=F64)
    net.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F64))
    s = torch.tensor([[1.0, -1.0]], dtype=F64)
    sync = net.recall(s, mode="sync", max_sweeps=11)
    assert not bool(sync.converged.any()) and sync.n_steps == 11
    torch.testing.assert_close(sync.states, -s)  # period 2: odd steps give -s
    asyn = net.recall(s, mode="async", generator=torch.Generator().manual_seed(0))
    assert bool(asyn.converged.all()) and float(asyn.states.prod()) == 1.0


def test_storkey_rule_matches_its_definition():
    xi = patterns(4, 9, 4)
    net = HopfieldNetwork(9, dtype=F64).store(xi, rule="storkey")
    n = 9
    w = torch.zeros(n, n, dtype=F64)
    for x in xi:  # the rule written out element by element
        new = w.clone()
        for i in range(n):
            for j in range(n):
                if i == j:
                    continue
                h_ij = sum(w[i, k] * x[k] for k in range(n) if k not in (i, j))
                h_ji = sum(w[j, k] * x[k] for k in range(n) if k not in (i, j))
                new[i, j] = w[i, j] + (x[i] * x[j] - x[i] * h_ji - h_ij * x[j]) / n
        w = new
    torch.testing.assert_close(net.weight, w)
    torch.testing.assert_close(net.weight, net.weight.t())


def test_storkey_stores_more_than_hebbian():
    n, p = 100, 25  # alpha = 0.25, well above the Hebbian capacity
    xi = patterns(p, n, 5)
    stable = {}
    for rule in ("hebbian", "storkey"):
        net = HopfieldNetwork(n, dtype=F64).store(xi, rule=rule)
        out = net.recall(xi, generator=torch.Generator().manual_seed(5))
        stable[rule] = float(((out.states * xi).mean(-1) > 0.95).to(F64).mean())
    assert stable["storkey"] > 0.95 and stable["hebbian"] < 0.6, stable


def test_hopfield_errors():
    net = HopfieldNetwork(4)
    with pytest.raises(ValueError, match="rule must be one of"):
        net.store(torch.ones(1, 4), rule="oja")
    with pytest.raises(ValueError, match="only -1 and \\+1"):
        net.store(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"patterns must have shape \(P, 4\)"):
        net.store(torch.ones(1, 5))
    with pytest.raises(ValueError, match="mode must be"):
        net.recall(torch.ones(1, 4), mode="parallel")


def test_modern_update_is_attention_and_lowers_a_bounded_energy():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(30, 8, generator=g, dtype=F64)
    net = ModernHopfield(x, beta=2.0)
    q = torch.randn(40, 8, generator=g, dtype=F64)
    attn = torch.softmax(2.0 * q @ x.t(), -1)
    torch.testing.assert_close(net.retrieve(q), attn @ x)
    torch.testing.assert_close(net.attention(q).sum(-1), torch.ones(40, dtype=F64))
    e0, e1 = net(q), net(net.retrieve(q))
    assert bool((e1 <= e0 + 1e-12).all())
    # 0 <= E <= 2 M^2 on the convex hull of the patterns (Ramsauer et al., lemma A2).
    m2 = float(x.norm(dim=-1).max()) ** 2
    assert bool((e1 >= -1e-12).all()) and bool((e1 <= 2 * m2).all())


def test_modern_one_step_retrieval_beyond_the_classical_capacity():
    n, p = 64, 640  # ten times as many patterns as units
    xi = patterns(p, n, 7)
    net = ModernHopfield(xi, beta=8.0 / n**0.5)
    q = flip(xi[:200], 0.1, 8)
    out = net.retrieve(q, n_steps=1).sign()
    assert float((out == xi[:200]).all(-1).to(F64).mean()) > 0.99
    with pytest.raises(ValueError, match="beta must be > 0"):
        ModernHopfield(xi, beta=0.0)

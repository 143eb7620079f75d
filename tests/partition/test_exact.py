"""Exact log Z: enumeration (every domain, chunking, refusal) and quadrature dispatch."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from ebmlab.energies import Gaussian
from ebmlab.partition import (
    enumerate_log_z,
    enumerate_states,
    exact_log_probs,
    exact_log_z,
    parse_domain,
)

from .targets import Boltzmann, Fields


def brute_force_log_z(energy, d, values):
    states = torch.tensor(list(itertools.product(values, repeat=d)), dtype=torch.float64)
    return float(torch.logsumexp(-energy(states), 0))


def test_enumerate_states_order_and_slices():
    x = enumerate_states(3, "binary", dtype=torch.float64)
    assert x.tolist() == [list(map(float, p)) for p in itertools.product([0, 1], repeat=3)]
    s = enumerate_states(4, 3, dtype=torch.float64)
    assert s.shape == (81, 4) and len({tuple(r) for r in s.tolist()}) == 81
    assert torch.equal(enumerate_states(4, 3, 10, 30, dtype=torch.float64), s[10:30])
    spins = enumerate_states((2, 2), "spin")
    assert spins.shape == (16, 2, 2) and set(spins.unique().tolist()) == {-1.0, 1.0}
    onehot = enumerate_states((3, 4), "onehot")
    assert onehot.shape == (64, 3, 4) and bool((onehot.sum(-1) == 1).all())
    odd = enumerate_states(2, [0.0, 1.0, 5.0])  # unevenly spaced values
    assert set(odd.unique().tolist()) == {0.0, 1.0, 5.0} and odd.shape == (9, 2)


@pytest.mark.parametrize("chunk_size", [None, 7, 64])
@pytest.mark.parametrize("domain", ["binary", "spin"])
def test_enumeration_matches_brute_force(chunk_size, domain):
    e = Boltzmann(10, seed=3, scale=2.0, domain=domain)
    values = (0.0, 1.0) if domain == "binary" else (-1.0, 1.0)
    est = enumerate_log_z(e, chunk_size=chunk_size)
    assert est.value == pytest.approx(brute_force_log_z(e, 10, values), abs=1e-10)
    assert est.method == "exact" and est.stderr == 0.0 and est.lower == est.upper == est.value
    assert est.n_samples == 2**10


@pytest.mark.parametrize(
    ("domain", "values", "shape"),
    [
        ("binary", [0.0, 1.0], (12,)),
        ("spin", [-1.0, 1.0], (12,)),
        (3, [0.0, 1.0, 2.0], (7,)),
        ([-1.0, 0.5, 2.0], [-1.0, 0.5, 2.0], (6,)),
        ("onehot", None, (5, 3)),
    ],
)
def test_enumeration_matches_closed_form(domain, values, shape):
    h = torch.randn(shape, dtype=torch.float64)
    e = Fields(h, domain)
    assert enumerate_log_z(e).value == pytest.approx(e.exact_log_z(values), abs=1e-10)


@pytest.mark.slow
def test_two_to_the_26_states_in_constant_memory():
    h = torch.randn(26, dtype=torch.float64)
    e = Fields(h, "binary")
    est = enumerate_log_z(e)
    assert est.n_samples == 2**26
    assert est.value == pytest.approx(e.exact_log_z([0.0, 1.0]), abs=1e-8)
    assert est.details["chunk_size"] <= 2**16  # memory: one chunk of states at a time


def test_too_many_states_refused_with_a_clear_message():
    e = Fields(torch.randn(31, dtype=torch.float64), "binary")
    with pytest.raises(ValueError, match=r"max_states.*ais"):
        enumerate_log_z(e)
    with pytest.raises(ValueError, match="max_states"):
        enumerate_log_z(Fields(torch.randn(12, dtype=torch.float64), "binary"), max_states=1000)


def test_exact_log_probs_normalized_and_consistent():
    e = Boltzmann(8, seed=1)
    x, lp = exact_log_probs(e)
    assert x.shape == (256, 8)
    assert float(torch.logsumexp(lp, 0)) == pytest.approx(0.0, abs=1e-12)
    assert float(lp[5]) == pytest.approx(float(-e(x[5:6])[0]) - enumerate_log_z(e).value)


def test_exact_log_z_dispatch_and_errors():
    g = Gaussian(torch.tensor([0.5, -1.0]), torch.tensor([[1.0, 0.3], [0.3, 0.5]]))
    est = exact_log_z(g.double(), bounds=[(-8.0, 8.0), (-8.0, 8.0)])
    assert est.method == "quadrature"
    assert abs(est.value - float(g.log_z)) <= max(5 * est.stderr, 1e-6)
    assert est.lower <= est.value <= est.upper
    assert exact_log_z(Boltzmann(6)).method == "exact"
    with pytest.raises(ValueError, match="dimension 1 to 3"):
        exact_log_z(Gaussian.standard(4), bounds=[(-5.0, 5.0)] * 4)
    with pytest.raises(ValueError, match="bounds"):
        exact_log_z(Gaussian.standard(2))
    with pytest.raises(ValueError, match="discrete domain"):
        enumerate_log_z(Gaussian.standard(2))


def test_domains_parse_and_reject():
    assert parse_domain("binary").values == (0.0, 1.0)
    assert parse_domain(4).n_vars((3, 2)) == 6
    assert parse_domain("onehot").n_values((5, 3)) == 3
    assert parse_domain(None).kind == "continuous"
    assert math.isclose(parse_domain("spin").log_n_states((10,)), 10 * math.log(2))
    for bad in ("ternary", 1, [1.0, 1.0], True):
        with pytest.raises(ValueError, match="domain"):
            parse_domain(bad)
    with pytest.raises(ValueError, match="one-hot"):
        parse_domain("onehot", (5,))

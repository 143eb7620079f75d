"""Contract tests for Langevin, MALA and HMC, the run loop, the replay buffer and leapfrog."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

import ebmlab
from ebmlab.energies import Energy, MLPEnergy, energy_and_grad
from ebmlab.samplers import (
    HMC,
    MALA,
    SAMPLERS,
    HMCInfo,
    HMCState,
    Langevin,
    LangevinInfo,
    LangevinState,
    MALAInfo,
    MALAState,
    ReplayBuffer,
    build_sampler,
    leapfrog,
    metropolis_accept,
    run,
    select,
)
from helpers import assert_binomial_proportions

F64 = torch.float64
EVENT_SHAPES = [(2,), (3, 4), (1, 5, 5)]


class Quadratic(Energy):
    """``E(x) = |x - center|^2 / (2 scale^2)`` over every coordinate of any event shape."""

    def __init__(self, event_shape: tuple[int, ...], scale: float = 1.0, center: float = 0.0):
        super().__init__(event_shape)
        self.scale = scale
        self.center = center

    def forward(self, x: Tensor) -> Tensor:
        r = (x - self.center).reshape(x.shape[0], -1)
        return r.pow(2).sum(1) / (2.0 * self.scale**2)


class Quartic(Energy):
    """Anharmonic ``E(x) = sum(x^2 / 2 + x^4 / 4)``."""

    def forward(self, x: Tensor) -> Tensor:
        x2 = x.reshape(x.shape[0], -1).pow(2)
        return (0.5 * x2 + 0.25 * x2 * x2).sum(1)


SAMPLER_FACTORIES: dict[str, Callable[..., object]] = {
    "langevin": lambda step=0.01: Langevin(step_size=step),
    "mala": lambda step=0.05: MALA(step_size=step),
    "hmc": lambda step=0.1: HMC(step_size=step, n_leapfrog=3),
}
TYPES = {
    "langevin": (LangevinState, LangevinInfo),
    "mala": (MALAState, MALAInfo),
    "hmc": (HMCState, HMCInfo),
}
METHODS = list(SAMPLER_FACTORIES)
methods = pytest.mark.parametrize("method", METHODS)
mh_methods = pytest.mark.parametrize("method", ["mala", "hmc"])


def make_generator(device: torch.device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def mlp(event_shape: tuple[int, ...], device: torch.device | str = "cpu") -> MLPEnergy:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        energy = MLPEnergy(event_shape, hidden=(16,), base_scale=1.0)
    return energy.to(device=device, dtype=F64).eval()


def start(shape: tuple[int, ...], device: torch.device, n: int = 6, seed: int = 1) -> Tensor:
    g = make_generator(device, seed)
    return torch.randn(n, *shape, generator=g, dtype=F64, device=device)


# ---------------------------------------------------------------- State / Info contract


@methods
@pytest.mark.parametrize("shape", EVENT_SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["mlp", "quadratic"])
def test_state_info_types_and_shapes(method, shape, kind, device):
    energy = mlp(shape, device) if kind == "mlp" else Quadratic(shape)
    sampler = SAMPLER_FACTORIES[method]()
    state_type, info_type = TYPES[method]
    x0 = start(shape, device)
    state = sampler.init(x0, energy)
    assert type(state) is state_type
    assert state.x.shape == (6, *shape) and state.x.dtype == F64
    assert state.x.device.type == device.type
    assert state.energy.shape == (6,)
    assert state.grad.shape == state.x.shape
    g = make_generator(device)
    for _ in range(3):
        state, info = sampler.step(state, energy, generator=g)
        assert type(state) is state_type and type(info) is info_type
        assert state.x.shape == (6, *shape) and state.x.dtype == F64
        assert state.energy.shape == (6,) and state.grad.shape == state.x.shape
        for field, value in zip(info._fields, info, strict=True):
            assert value.shape == (6,), field
        rate = info.acceptance_rate
        assert bool(((rate >= 0) & (rate <= 1)).all()), rate
        if method != "langevin":
            assert info.is_accepted.dtype == torch.bool
            moved = (state.x != x0).reshape(6, -1).any(1)
            assert bool((moved | ~info.is_accepted).all())
            x0 = state.x
    assert bool(torch.isfinite(state.x).all())


@methods
def test_cached_energy_and_grad_are_those_of_state_x(method, device):
    energy = mlp((3, 4), device)
    # steps large enough that some proposals are rejected and some accepted
    step = {"langevin": 0.05, "mala": 0.3, "hmc": 0.4}[method]
    sampler = SAMPLER_FACTORIES[method](step)
    state = sampler.init(start((3, 4), device, n=32), energy)
    g = make_generator(device)
    accepted = []
    for _ in range(10):
        state, info = sampler.step(state, energy, generator=g)
        e, grad = energy_and_grad(energy, state.x)
        torch.testing.assert_close(state.energy, e)
        torch.testing.assert_close(state.grad, grad)
        if method != "langevin":
            accepted.append(info.is_accepted)
    if accepted:
        frac = float(torch.stack(accepted).double().mean())
        assert 0.0 < frac < 1.0, f"both branches of select should be exercised, got {frac}"


@mh_methods
def test_tiny_step_is_almost_always_accepted(method, device):
    energy = Quadratic((3, 4))
    sampler = MALA(step_size=1e-6) if method == "mala" else HMC(step_size=1e-4, n_leapfrog=3)
    out = run(sampler, energy, start((3, 4), device, n=64), 20, generator=make_generator(device))
    assert float(out.acceptance_rate.min()) > 0.99, out.acceptance_rate


@mh_methods
def test_huge_step_is_mostly_rejected(method, device):
    energy = Quadratic((3, 4))
    x0 = start((3, 4), device, n=64)
    # HMC: leapfrog is unstable for step > 2 on a unit quadratic.
    sampler = MALA(step_size=10.0) if method == "mala" else HMC(step_size=3.0, n_leapfrog=3)
    out = run(sampler, energy, x0, 20, generator=make_generator(device))
    assert float(out.acceptance_rate.mean()) < 0.05, out.acceptance_rate
    rates = out.acceptance_rate
    assert bool(((rates >= 0) & (rates <= 1)).all())


@methods
def test_sampling_never_populates_parameter_gradients(method):
    energy = mlp((2,)).train()
    x0 = start((2,), torch.device("cpu"), n=8)
    run(SAMPLER_FACTORIES[method](), energy, x0, 5)
    ebmlab.sample(energy, x0, method, n_steps=3)
    for name, p in energy.named_parameters():
        assert p.grad is None, f"sampling populated {name}.grad"


@methods
def test_same_seed_same_chains(method, device):
    energy = mlp((3,), device)
    x0 = start((3,), device, n=16)
    sampler = SAMPLER_FACTORIES[method]()
    a = run(sampler, energy, x0, 10, generator=make_generator(device, 7), thin=1)
    b = run(sampler, energy, x0, 10, generator=make_generator(device, 7), thin=1)
    c = run(sampler, energy, x0, 10, generator=make_generator(device, 8), thin=1)
    assert torch.equal(a.samples, b.samples)
    assert torch.equal(a.acceptance_rate, b.acceptance_rate)
    assert not torch.equal(a.samples, c.samples)


@methods
def test_run_continues_from_a_state(method, device):
    energy = Quadratic((2,))
    sampler = SAMPLER_FACTORIES[method]()
    x0 = start((2,), device)
    whole = run(sampler, energy, x0, 10, generator=make_generator(device, 3))
    g = make_generator(device, 3)
    half = run(sampler, energy, x0, 5, generator=g)
    rest = run(sampler, energy, half.state, 5, generator=g)
    assert torch.equal(whole.state.x, rest.state.x)


# ---------------------------------------------------------------- Langevin specifics


def test_langevin_grad_clip_bounds_the_drift():
    energy = Quadratic((2, 2), center=10.0)  # |grad| = |x - 10| * ... large at 0
    x0 = torch.zeros(5, 2, 2, dtype=F64)
    x0[0] = 9.99  # small gradient: not clipped
    eps, clip = 0.1, 1.0
    sampler = Langevin(step_size=eps, noise_scale=0.0, grad_clip=clip)
    state = sampler.init(x0, energy)
    new, _ = sampler.step(state, energy)
    g = state.grad.reshape(5, -1)
    norm = g.norm(dim=1, keepdim=True)
    expected = x0.reshape(5, -1) - eps * g * torch.clamp(clip / norm, max=1.0)
    torch.testing.assert_close(new.x.reshape(5, -1), expected)
    step_norm = (new.x - x0).reshape(5, -1).norm(dim=1)
    assert bool((step_norm <= eps * clip + 1e-12).all())
    assert float(step_norm[0]) < eps * clip  # the small gradient kept its size
    unclipped, _ = Langevin(step_size=eps, noise_scale=0.0).step(state, energy)
    torch.testing.assert_close(unclipped.x, x0 - eps * state.grad)


def test_langevin_clamp_keeps_chains_in_bounds():
    energy = Quadratic((4,), scale=3.0)
    sampler = Langevin(step_size=0.5, clamp=(-1.0, 1.0))
    x0 = torch.tensor([[5.0, -5.0, 0.5, 0.0]], dtype=F64).repeat(32, 1)
    state = sampler.init(x0, energy)
    assert float(state.x.abs().max()) <= 1.0
    torch.testing.assert_close(state.energy, energy(state.x))
    out = run(sampler, energy, state, 10, thin=1, generator=torch.Generator().manual_seed(0))
    assert float(out.samples.abs().max()) <= 1.0
    assert bool((out.samples.abs() == 1.0).any()), "the bounds should be hit"
    torch.testing.assert_close(out.state.energy, energy(out.state.x))


def test_langevin_default_noise_scale():
    assert Langevin(step_size=0.02).noise_scale == pytest.approx(math.sqrt(0.04))
    assert Langevin(step_size=0.02, noise_scale=0.0).noise_scale == 0.0
    assert "step_size=0.02" in repr(Langevin(step_size=0.02))


# ---------------------------------------------------------------- run loop


@methods
def test_run_thin_and_burn_in_shapes(method):
    energy = Quadratic((3, 4))
    sampler = SAMPLER_FACTORIES[method]()
    x0 = start((3, 4), torch.device("cpu"), n=5)
    out = run(sampler, energy, x0, 20, burn_in=5, thin=3)
    assert out.samples.shape == ((20 - 5) // 3, 5, 3, 4)
    assert out.acceptance_rate.shape == (5,)
    assert bool(((out.acceptance_rate >= 0) & (out.acceptance_rate <= 1)).all())
    out = run(sampler, energy, x0, 20, burn_in=5, thin=5)
    assert out.samples.shape == (3, 5, 3, 4)
    assert torch.equal(out.samples[-1], out.state.x)
    assert run(sampler, energy, x0, 20).samples is None
    empty = run(sampler, energy, x0, 0, thin=1)
    assert empty.samples is None and torch.equal(empty.state.x, x0)
    if method == "langevin":
        assert torch.equal(out.acceptance_rate, torch.ones(5, dtype=F64))


def test_run_rejects_negative_counts():
    sampler, energy, x0 = MALA(0.1), Quadratic((2,)), torch.zeros(3, 2, dtype=F64)
    with pytest.raises(ValueError, match="n_steps"):
        run(sampler, energy, x0, -1)
    with pytest.raises(ValueError, match="thin"):
        run(sampler, energy, x0, 5, thin=-1)
    with pytest.raises(ValueError, match="burn_in"):
        run(sampler, energy, x0, 5, burn_in=-2)


def test_run_warns_about_non_finite_chains():
    with pytest.warns(RuntimeWarning, match="non-finite"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        run(Langevin(step_size=10.0), Quartic((2,)), torch.full((4, 2), 3.0, dtype=F64), 10)


# ---------------------------------------------------------------- sample / build_sampler


@methods
def test_sample_convenience(method, device):
    energy = mlp((3, 4), device)
    x0 = start((3, 4), device, n=10)
    a = ebmlab.sample(energy, x0, method, n_steps=5, generator=make_generator(device, 1))
    b = ebmlab.sample(energy, x0, method, n_steps=5, generator=make_generator(device, 1))
    assert a.shape == x0.shape and a.dtype == F64 and a.device == x0.device
    assert bool(torch.isfinite(a).all())
    assert torch.equal(a, b)
    assert not torch.equal(a, x0)
    moved = ebmlab.sample(energy, x0, method, n_steps=5, step_size=0.02)
    assert moved.shape == x0.shape


def test_build_sampler_by_name():
    assert set(SAMPLERS) >= {"langevin", "ula", "mala", "hmc"}
    assert isinstance(build_sampler("ula", step_size=0.1), Langevin)
    hmc = build_sampler("hmc", step_size=0.1, n_leapfrog=4)
    assert isinstance(hmc, HMC) and hmc.n_leapfrog == 4
    with pytest.raises(ValueError, match=r"method must be one of .*'mala'.*got 'nuts'"):
        build_sampler("nuts", step_size=0.1)
    with pytest.raises(ValueError, match="n_leapfrog"):
        build_sampler("mala", step_size=0.1, n_leapfrog=3)
    with pytest.raises(ValueError, match="step_size"):
        build_sampler("mala", step_size=-1.0)
    with pytest.raises(ValueError, match="method must be one of"):
        ebmlab.sample(Quadratic((2,)), torch.zeros(2, 2), "gibbs-ish")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Langevin(step_size=0.0), "step_size"),
        (lambda: Langevin(step_size=0.1, noise_scale=-1.0), "noise_scale"),
        (lambda: Langevin(step_size=0.1, grad_clip=0.0), "grad_clip"),
        (lambda: Langevin(step_size=0.1, clamp=(1.0, -1.0)), "clamp"),
        (lambda: MALA(step_size=-0.1), "step_size"),
        (lambda: HMC(step_size=0.0), "step_size"),
        (lambda: HMC(step_size=0.1, n_leapfrog=0), "n_leapfrog"),
        (lambda: HMC(step_size=0.1, mass=-1.0), "mass"),
    ],
)
def test_invalid_hyperparameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------- Metropolis parts


def test_metropolis_accept_probabilities(generator):
    n = 20000
    always = metropolis_accept(torch.zeros(n, dtype=F64), generator)
    assert always.dtype == torch.bool and bool(always.all())
    assert not bool(metropolis_accept(torch.full((n,), -math.inf, dtype=F64), generator).any())
    assert not bool(metropolis_accept(torch.full((n,), math.nan, dtype=F64), generator).any())
    hits = int(metropolis_accept(torch.full((n,), math.log(0.3), dtype=F64), generator).sum())
    assert_binomial_proportions([hits, n - hits], [0.3, 0.7])


def test_select_picks_per_chain():
    proposed = MALAState(torch.ones(3, 2, 2), torch.ones(3), torch.ones(3, 2, 2))
    current = MALAState(torch.zeros(3, 2, 2), torch.zeros(3), torch.zeros(3, 2, 2))
    out = select(torch.tensor([True, False, True]), proposed, current)
    assert type(out) is MALAState
    assert out.energy.tolist() == [1.0, 0.0, 1.0]
    assert out.x[:, 0, 0].tolist() == [1.0, 0.0, 1.0]
    assert out.grad[1].abs().sum() == 0


# ---------------------------------------------------------------- replay buffer


def uniform_init(shape: tuple[int, ...]) -> Callable[[int, torch.Generator | None], Tensor]:
    def init(n: int, g: torch.Generator | None) -> Tensor:
        return torch.rand(n, *shape, generator=g, dtype=F64) * 2 - 1

    return init


def test_replay_buffer_shapes(generator):
    buf = ReplayBuffer(100, uniform_init((2, 3)), generator=generator)
    assert len(buf) == 100 and buf.buffer.shape == (100, 2, 3)
    x, idx = buf.sample(8, generator=generator)
    assert x.shape == (8, 2, 3) and idx.shape == (8,)
    assert idx.dtype == torch.long and bool(((idx >= 0) & (idx < 100)).all())
    assert "capacity=100" in repr(buf)
    x[:] = 5.0  # a copy: the buffer is untouched
    assert float(buf.buffer.abs().max()) <= 1.0


def test_replay_buffer_reinit_probability(generator):
    buf = ReplayBuffer(50, uniform_init((2,)), reinit_prob=0.0, generator=generator)
    buf.buffer.fill_(7.0)  # marker: fresh starts lie in [-1, 1]
    x, idx = buf.sample(200, generator=generator)
    assert torch.equal(x, buf.buffer[idx])
    buf.reinit_prob = 1.0
    x, _ = buf.sample(200, generator=generator)
    assert float(x.abs().max()) <= 1.0
    buf.reinit_prob = 0.3
    n = 4000
    x, _ = buf.sample(n, generator=generator)
    fresh = int((x[:, 0] != 7.0).sum())
    assert bool(((x == 7.0).all(1) | (x.abs() <= 1).all(1)).all()), "rows must not be mixed"
    assert_binomial_proportions([fresh, n - fresh], [0.3, 0.7])


def test_replay_buffer_push_writes_back_to_idx(generator):
    buf = ReplayBuffer(30, uniform_init((2,)), reinit_prob=0.5, generator=generator)
    before = buf.buffer.clone()
    _, idx = buf.sample(10, generator=generator)
    values = (100.0 + idx.to(F64))[:, None].expand(10, 2)  # repeated slots get equal rows
    buf.push(values, idx)
    torch.testing.assert_close(buf.buffer[idx], values)
    untouched = torch.ones(30, dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(buf.buffer[untouched], before[untouched])
    assert buf.n_seen == 10
    with pytest.raises(ValueError, match="idx"):
        buf.push(values)


def test_replay_buffer_push_never_writes_a_slot_twice(generator):
    """n != capacity draws slots with replacement; each slot is written once, last chain wins."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class IndexWrites(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.indices = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in (torch.ops.aten.index_put_.default, torch.ops.aten.index_put.default):
                self.indices.append(args[1][0].clone())
            return func(*args, **(kwargs or {}))

    buf = ReplayBuffer(5, uniform_init((2,)), reinit_prob=0.0, generator=generator)
    idx = torch.tensor([3, 1, 3, 0, 1, 3])
    values = torch.arange(6, dtype=F64)[:, None].expand(6, 2)
    with IndexWrites() as mode:
        buf.push(values, idx)
    assert mode.indices, "push wrote no rows"
    for written in mode.indices:
        assert written.unique().numel() == written.numel(), f"slots written twice: {written}"
    assert buf.buffer[[3, 1, 0], 0].tolist() == [5.0, 4.0, 3.0]


@pytest.mark.parametrize(("capacity", "batch"), [(2000, 100), (200, 1000)])
def test_reservoir_keeps_a_uniform_sample_of_history(capacity, batch, generator):
    """After pushing items 0..N-1, each is stored with probability capacity / N."""
    n_total = 20000
    buf = ReplayBuffer(capacity, lambda n, g: torch.full((n, 1), -1.0), reservoir=True)
    for first in range(0, n_total, batch):
        items = torch.arange(first, first + batch, dtype=torch.float32)[:, None]
        buf.push(items, generator=generator)
    assert buf.n_seen == n_total
    stored = buf.buffer[:, 0].long()
    assert bool((stored >= 0).all()), "initial fill survived"
    assert stored.unique().numel() == capacity
    # Histogram of stored items over 10 equal slices of history: binomial(capacity, 1/10)
    # is conservative (a reservoir samples without replacement).
    counts = torch.bincount(stored * 10 // n_total, minlength=10)
    assert_binomial_proportions(counts, torch.full((10,), 0.1))


def test_replay_buffer_state_dict_round_trip(generator):
    buf = ReplayBuffer(20, uniform_init((3,)), reservoir=True, generator=generator)
    buf.push(torch.ones(25, 3, dtype=F64), generator=generator)
    other = ReplayBuffer(20, uniform_init((3,)), reservoir=True)
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.buffer, buf.buffer) and other.n_seen == buf.n_seen == 25
    other.buffer += 1  # no aliasing
    assert not torch.equal(other.buffer, buf.buffer)
    with pytest.raises(ValueError, match="shape"):
        ReplayBuffer(10, uniform_init((3,))).load_state_dict(buf.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": 5, "reinit_prob": 1.5}, "reinit_prob"),
        ({"capacity": 5, "init_fn": lambda n, g: torch.zeros(n + 1, 2)}, "rows"),
    ],
)
def test_replay_buffer_invalid_arguments(kwargs, match):
    kwargs.setdefault("init_fn", uniform_init((2,)))
    with pytest.raises(ValueError, match=match):
        ReplayBuffer(**kwargs)


# ---------------------------------------------------------------- leapfrog


def test_leapfrog_energy_error_is_second_order(generator):
    energy = Quartic((3,))
    x = torch.randn(64, 3, generator=generator, dtype=F64)
    p = torch.randn(64, 3, generator=generator, dtype=F64)
    e0, g0 = energy_and_grad(energy, x)
    h0 = e0 + 0.5 * p.pow(2).sum(1)
    errors = []
    for n_steps in (20, 40, 80):  # total time 1
        x1, p1, e1, g1 = leapfrog(energy, x, p, g0, 1.0 / n_steps, n_steps)
        torch.testing.assert_close((e1, g1), energy_and_grad(energy, x1))
        errors.append(float((e1 + 0.5 * p1.pow(2).sum(1) - h0).abs().mean()))
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(3.5 < r < 4.5 for r in ratios), (errors, ratios)


def test_leapfrog_is_reversible(generator):
    energy = Quartic((2, 2))
    x = torch.randn(16, 2, 2, generator=generator, dtype=F64)
    p = torch.randn(16, 2, 2, generator=generator, dtype=F64)
    inv_mass = torch.tensor([[1.0, 0.5], [2.0, 1.0]], dtype=F64)
    _, g = energy_and_grad(energy, x)
    x1, p1, _, g1 = leapfrog(energy, x, p, g, 0.05, 25, inv_mass)
    assert float((x1 - x).abs().max()) > 0.1
    x2, p2, _, _ = leapfrog(energy, x1, -p1, g1, 0.05, 25, inv_mass)
    assert float((x2 - x).abs().max()) < 1e-10
    assert float((p2 + p).abs().max()) < 1e-10


def test_hmc_with_tensor_mass_keeps_shapes():
    energy = Quadratic((3, 4))
    sampler = HMC(step_size=0.1, n_leapfrog=3, mass=torch.full((3, 4), 2.0))
    state, info = sampler.step(sampler.init(torch.zeros(5, 3, 4, dtype=F64), energy), energy)
    assert state.x.shape == (5, 3, 4) and info.delta_hamiltonian.shape == (5,)
    assert "n_leapfrog=3" in repr(sampler)


def test_gradient_samplers_share_one_state() -> None:
    """Langevin, MALA, HMC and GWG chains are one type: (x, energy, grad)."""
    from ebmlab.samplers import GradientState, GWGState, HMCState, LangevinState, MALAState

    assert MALAState is HMCState is LangevinState is GWGState is GradientState
    assert GradientState._fields == ("x", "energy", "grad")

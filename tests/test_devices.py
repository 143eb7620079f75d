"""Every main code path on every available device (CPU always; CUDA when present).

These are smoke-and-sanity checks, not statistical tests: each asserts shapes,
devices, finiteness and an exact or structural property (samples stay on the
device, spins stay +/-1, an exact log Z agrees with enumeration, the fast path
agrees with the eager one). The statistical tests run on the CPU elsewhere and,
with ``--device cuda``, the sampler contract tests repeat them on the GPU.
"""

from __future__ import annotations

import math

import pytest
import torch

from ebmlab.boltzmann import BernoulliRBM
from ebmlab.energies import Gaussian, GaussianMixture, MLPEnergy, energy_and_grad
from ebmlab.lattice import IsingModel
from ebmlab.objectives import (
    ContrastiveDivergence,
    DenoisingScoreMatching,
    NoiseContrastiveEstimation,
    ScoreMatching,
    SlicedScoreMatching,
    fit_gaussian_noise,
)
from ebmlab.partition import log_z
from ebmlab.samplers import (
    HMC,
    MALA,
    CheckerboardGibbs,
    Langevin,
    SwendsenWang,
    Wolff,
    run,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def dev(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.param)


def _gen(dev: torch.device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=dev).manual_seed(seed)


@pytest.mark.parametrize("sampler", [Langevin(0.01), MALA(0.05), HMC(0.1, 5)], ids=repr)
def test_gradient_samplers_stay_on_device(dev, sampler):
    energy = MLPEnergy(3, (16, 16)).to(dev)
    x0 = torch.randn(64, 3, generator=_gen(dev), device=dev)
    out = run(sampler, energy, x0, 20, generator=_gen(dev, 1))
    assert out.state.x.device.type == dev.type
    assert out.state.x.shape == (64, 3)
    assert bool(torch.isfinite(out.state.x).all())


def test_compiled_langevin_matches_eager(dev):
    energy = MLPEnergy(4, (32, 32)).to(dev).eval()
    x0 = torch.randn(128, 4, generator=_gen(dev), device=dev)
    eager = run(Langevin(0.01), energy, x0, 5, generator=_gen(dev, 2)).state.x
    fast = run(Langevin(0.01, compile=True), energy, x0, 5, generator=_gen(dev, 2)).state.x
    # Same noise stream, fused arithmetic: equal up to float32 reassociation.
    scale = eager.abs().max().item()
    assert torch.allclose(fast, eager, atol=1e-4 * max(scale, 1.0), rtol=0)


def test_compiled_langevin_kept_states_match_eager(dev):
    """run(..., thin=1) keeps every state: on CUDA (CUDA graphs) each must be a copy, not
    the graph's output buffer that the next replay overwrites."""
    energy = MLPEnergy(4, (32, 32)).to(dev).eval()
    x0 = torch.randn(64, 4, generator=_gen(dev), device=dev)
    eager = run(Langevin(0.01), energy, x0, 4, thin=1, generator=_gen(dev, 2)).samples
    fast = run(Langevin(0.01, compile=True), energy, x0, 4, thin=1, generator=_gen(dev, 2))
    assert fast.samples is not None and eager is not None
    scale = max(eager.abs().max().item(), 1.0)
    assert torch.allclose(fast.samples, eager, atol=1e-4 * scale, rtol=0)
    assert len({t.data_ptr() for t in fast.samples.unbind(0)}) == 4


class _StaticOutputs:
    """What CUDA graphs do, on the CPU: every call writes into the same output buffers."""

    def __init__(self, fn, **kwargs):
        self.fn, self.buffers = fn, None

    def __call__(self, *args):
        out = self.fn(*args)
        if self.buffers is None:
            self.buffers = tuple(torch.empty_like(t) for t in out)
        for buf, t in zip(self.buffers, out, strict=True):
            buf.copy_(t)
        return self.buffers


@pytest.fixture
def cuda_graph_outputs(monkeypatch):
    """Compiled kernels behave as under CUDA graphs (outputs reused), on the CPU."""
    monkeypatch.setattr(
        "ebmlab.samplers._compile._compile_mode",
        lambda device_type: "reduce-overhead",
        raising=False,  # absent from the landed code, which this test must also fail on
    )
    monkeypatch.setattr(torch, "compile", _StaticOutputs)


class _Quadratic(torch.nn.Module):
    """An energy with a parameter and no CPU fast path (so the compiled kernel is used)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.5, dtype=torch.float64))

    def forward(self, x):
        return 0.5 * self.scale * x.pow(2).sum(-1)


def test_compiled_langevin_copies_reused_outputs(cuda_graph_outputs):
    energy = _Quadratic()
    x0 = torch.randn(16, 2, generator=_gen(torch.device("cpu")), dtype=torch.float64)
    eager = run(Langevin(0.1), energy, x0, 4, thin=1, generator=_gen(torch.device("cpu"), 2))
    sampler = Langevin(0.1, compile=True)
    fast = run(sampler, energy, x0, 4, thin=1, generator=_gen(torch.device("cpu"), 2))
    assert not sampler._kernels.failed
    torch.testing.assert_close(fast.samples, eager.samples)  # kept states are not overwritten
    assert sampler._kernels.reuses_outputs


def test_improved_cd_keeps_its_last_transition_under_reused_outputs(cuda_graph_outputs):
    energy = _Quadratic()
    x = torch.randn(16, 2, generator=_gen(torch.device("cpu")), dtype=torch.float64)
    results = []
    for compile_ in (False, True):
        cd = ContrastiveDivergence(
            Langevin(0.1, compile=compile_), n_steps=3, mode="cd", kl_weight=1.0
        )
        _, _, (before, after, _) = cd._negatives(
            energy, x, None, _gen(torch.device("cpu"), 3), True
        )
        assert before.x.data_ptr() != after.x.data_ptr()
        loss, diag, _ = cd(energy, x, None, generator=_gen(torch.device("cpu"), 3))
        (grad,) = torch.autograd.grad(loss, energy.scale)
        results.append((before.x, after.x, diag.kl, grad))
    for eager, fast in zip(*results, strict=True):
        torch.testing.assert_close(fast, eager)


def test_gaussian_mixture_built_on_device(dev):
    mix = GaussianMixture(
        torch.ones(2, device=dev), torch.tensor([[-2.0, 0.0], [2.0, 0.0]], device=dev), 0.25
    )
    x = mix.sample(1000, generator=_gen(dev))
    assert x.device.type == dev.type
    # Exact normalization: log Z of exp(-E) matches the mixture's own value.
    assert math.isfinite(float(mix.log_z))
    e, g = energy_and_grad(mix, x[:10])
    assert e.shape == (10,) and g.shape == (10, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ScoreMatching(),
        lambda: SlicedScoreMatching(2),
        lambda: DenoisingScoreMatching(noise_levels=[0.1, 0.05]),
    ],
    ids=["sm", "ssm", "dsm"],
)
def test_score_matching_backward_on_device(dev, make):
    energy = MLPEnergy(2, (16,)).to(dev)
    x = torch.randn(32, 2, generator=_gen(dev), device=dev)
    objective = make()
    loss, _, _ = objective(energy, x, None, generator=_gen(dev, 1))
    loss.backward()
    # The output bias gets no gradient (a constant shift leaves the score unchanged).
    grads = [p.grad for p in energy.parameters() if p.grad is not None]
    assert grads and all(
        g.device.type == dev.type and bool(torch.isfinite(g).all()) for g in grads
    )
    assert math.isfinite(loss.item())


def test_nce_and_cd_on_device(dev):
    energy = MLPEnergy(2, (16,)).to(dev)
    data = torch.randn(256, 2, generator=_gen(dev), device=dev)
    nce = NoiseContrastiveEstimation(fit_gaussian_noise(data), 2.0).to(dev)
    loss, _diag, _ = nce(energy, data[:64], None, generator=_gen(dev, 1))
    loss.backward()
    assert nce.log_z.grad is not None and nce.log_z.grad.device.type == dev.type

    def init_fn(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, 2, generator=generator, device=dev)

    cd = ContrastiveDivergence(MALA(0.05), 3, mode="pcd", init_fn=init_fn)
    state = cd.init_state(32, generator=_gen(dev, 2))
    loss, _, state = cd(energy, data[:32], state, generator=_gen(dev, 3))
    loss.backward()
    assert math.isfinite(loss.item())


def test_gaussian_log_z_by_ais_on_device(dev):
    target = Gaussian(torch.zeros(3, device=dev), 0.5 * torch.eye(3, device=dev))
    est = log_z(target, "ais", n_chains=256, n_temperatures=50, generator=_gen(dev))
    # AIS from a Gaussian base to a Gaussian: within a few standard errors of exact.
    exact = float(target.log_z)
    assert abs(est.value - exact) < 5 * max(est.stderr, 1e-3) + 0.05


@pytest.mark.parametrize("sampler", [CheckerboardGibbs(), Wolff(), SwendsenWang()], ids=repr)
def test_ising_moves_on_device(dev, sampler):
    model = IsingModel.lattice(8, beta=0.4).to(dev)
    x0 = torch.ones(4, 8, 8, device=dev)
    state = sampler.init(x0, model)
    state, _ = sampler.step(state, model, generator=_gen(dev))
    assert state.x.device.type == dev.type
    assert bool(((state.x == 1) | (state.x == -1)).all())


def test_rbm_exact_log_z_and_gibbs_on_device(dev):
    rbm = BernoulliRBM(6, 4, weight_scale=0.5, generator=_gen(torch.device("cpu"))).to(dev)
    exact = rbm.log_z("exact")
    # Brute force over the 64 visible states: log sum exp(-F(v)).
    v = torch.tensor(
        [[(i >> k) & 1 for k in range(6)] for i in range(64)], dtype=torch.float32, device=dev
    )
    with torch.no_grad():
        brute = float(torch.logsumexp(-rbm.free_energy(v), 0))
    assert abs(exact.value - brute) < 1e-4
    samples = rbm.sample(10, 5, generator=_gen(dev))
    assert samples.device.type == dev.type and samples.shape == (10, 6)

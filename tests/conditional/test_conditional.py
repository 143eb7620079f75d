"""Conditional energies F(x, y) and inference: search, clustering, Gibbs, sampling."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from ebmlab.conditional import (
    ConditionalEnergy,
    DiscreteConditionalEnergy,
    JointEmbeddingEnergy,
    LatentConditionalEnergy,
    MLPConditionalEnergy,
    QuadraticConditionalEnergy,
    cluster_answers,
    descend,
    fit_conditional,
    gibbs_conditional,
    infer,
    latent_grid,
    restart_points,
    sample_conditional,
)
from helpers import (
    assert_binomial_proportions,
    assert_mean_within_mcse,
    assert_variance_within_mcse,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small tensors: one thread is fastest, and immune to a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class DoubleWell(ConditionalEnergy):
    """``F(x, y) = (y^2 - x)^2 + tilt * y``: answers +-sqrt(x) for x > 0, one answer else."""

    def __init__(self, tilt: float = 0.0) -> None:
        super().__init__(1, y_dim=1)
        self.tilt = tilt

    def forward(self, x, y):
        return ((y[:, 0] ** 2 - x[:, 0]) ** 2) + self.tilt * y[:, 0]


def _continuous_energies():
    g = torch.Generator().manual_seed(0)
    return {
        "mlp": MLPConditionalEnergy(3, 2, hidden=(8,), y_scale=2.0, generator=g),
        "quadratic": QuadraticConditionalEnergy(3, 2, hidden=(4,), generator=g),
        "joint": JointEmbeddingEnergy(3, 2, embed_dim=4, hidden=(8,), generator=g),
    }


@pytest.mark.parametrize("name", ["mlp", "quadratic", "joint"])
def test_continuous_energy_contract(name, dtype):
    F = _continuous_energies()[name].to(dtype)
    x, y = torch.randn(7, 3, dtype=dtype), torch.randn(7, 2, dtype=dtype)
    e = F(x, y)
    assert e.shape == (7,) and e.dtype == dtype and bool(torch.isfinite(e).all())
    e.sum().backward()
    for pname, p in F.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), f"no gradient reaches {pname}"
    assert "y_dim=2" in repr(F)
    with pytest.raises(ValueError, match="y must have shape"):
        F.check_input(x, torch.randn(7, 3, dtype=dtype))
    with pytest.raises(ValueError, match="energies"):
        F.energies(x)


def test_discrete_energy_is_negated_logits(dtype):
    F = DiscreteConditionalEnergy(4, 3, hidden=(8,)).to(dtype)
    x = torch.randn(6, 4, dtype=dtype)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    assert torch.equal(F.energies(x), -F.network(x))
    assert torch.allclose(F(x, y), F.energies(x)[torch.arange(6), y])
    # The base-class fallback (one forward per class) agrees with energies().
    assert torch.allclose(ConditionalEnergy.energies(F, x), F.energies(x))
    F.check_input(x, y)
    with pytest.raises(ValueError, match="class indices"):
        F.check_input(x, y[:, None])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="exactly one of y_dim and n_classes"):
        ConditionalEnergy(2)
    with pytest.raises(ValueError, match="y_scale"):
        MLPConditionalEnergy(2, 1, y_scale=0.0)
    with pytest.raises(ValueError, match="positive definite"):
        QuadraticConditionalEnergy(2, 2, precision=-torch.eye(2))
    with pytest.raises(ValueError, match="method must be one of"):
        infer(DoubleWell(), torch.ones(1, 1), method="newton")
    with pytest.raises(ValueError, match="does not apply"):
        infer(DoubleWell(), torch.ones(1, 1), method="enumerate")
    with pytest.raises(ValueError, match="bounds is required"):
        gibbs_conditional(DoubleWell(), torch.ones(1, 1))


def test_seeded_construction_is_reproducible_and_leaves_global_rng_alone():
    before = torch.random.get_rng_state()
    a = MLPConditionalEnergy(2, 1, hidden=(5,), generator=torch.Generator().manual_seed(3))
    b = MLPConditionalEnergy(2, 1, hidden=(5,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), before)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_quadratic_inference_is_exact(dtype, generator):
    F = QuadraticConditionalEnergy(
        3, 2, precision=torch.tensor([[4.0, 1.0], [1.0, 0.5]]), generator=generator
    ).to(dtype)
    x = torch.randn(10, 3, dtype=dtype, generator=generator)
    modes = infer(F, x, n_restarts=8, n_steps=300, bounds=(-6, 6), generator=generator)
    assert modes.n_modes.tolist() == [1] * 10
    assert torch.allclose(modes.y[:, 0], F.mean(x).detach(), atol=1e-4)
    assert torch.allclose(modes.weight[:, 0], torch.ones(10, dtype=dtype))
    assert float(modes.energy.max()) < 1e-8


@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_gibbs_quadrature_matches_closed_form(beta):
    F = QuadraticConditionalEnergy(2, 1, precision=torch.tensor([[2.5]])).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    p = gibbs_conditional(F, x, beta, bounds=(-12, 12), resolution=2000)
    assert torch.allclose(p.log_z, F.log_z(x, beta).detach(), atol=1e-6)
    assert torch.allclose(p.probs.sum(1), torch.ones(4, dtype=torch.float64))
    mean = (p.probs * p.values[:, 0]).sum(1)
    assert torch.allclose(mean, F.mean(x)[:, 0].detach(), atol=1e-6)


def test_double_well_gives_two_answers_sorted_by_energy():
    F = DoubleWell(tilt=0.05).double()
    x = torch.tensor([[1.0], [0.25], [-0.5]], dtype=torch.float64)
    modes = infer(F, x, n_restarts=12, n_steps=200, bounds=(-2, 2))
    assert modes.n_modes.tolist() == [2, 2, 1]
    assert modes.y.shape == (3, 2, 1)
    # The tilt lowers the negative branch: it comes first.
    assert torch.allclose(
        modes.y[0, :, 0], torch.tensor([-1.0, 1.0], dtype=torch.float64), atol=0.02
    )
    assert torch.allclose(
        modes.y[1, :, 0], torch.tensor([-0.5, 0.5], dtype=torch.float64), atol=0.06
    )
    assert bool((modes.energy[:, 0] <= modes.energy[:, 1]).all())
    assert math.isnan(float(modes.y[2, 1, 0])) and math.isinf(float(modes.energy[2, 1]))
    assert torch.allclose(modes.weight.sum(1), torch.ones(3, dtype=torch.float64))
    top = infer(F, x, n_restarts=12, n_steps=200, bounds=(-2, 2), max_modes=1)
    assert top.n_modes.tolist() == [1, 1, 1]
    assert torch.allclose(top.y[:, 0], modes.y[:, 0], atol=1e-3)
    gap = infer(F, x, n_restarts=12, n_steps=200, bounds=(-2, 2), energy_gap=0.01)
    assert gap.n_modes.tolist() == [1, 1, 1]


def test_rows_do_not_depend_on_their_batch():
    F = DoubleWell(tilt=0.1).double()
    x = torch.linspace(-0.5, 1.5, 9, dtype=torch.float64)[:, None]
    full = infer(F, x, bounds=(-2, 2), generator=torch.Generator().manual_seed(1))
    for i in (0, 4, 8):
        one = infer(F, x[i : i + 1], bounds=(-2, 2), generator=torch.Generator().manual_seed(1))
        k = int(one.n_modes[0])
        assert k == int(full.n_modes[i])
        assert torch.allclose(one.y[0, :k], full.y[i, :k], atol=1e-9)


def test_langevin_inference_weights_basins_by_probability(generator):
    # Symmetric double well at x = 1: each basin holds half the mass.
    F = DoubleWell().double()
    n = 400
    modes = infer(
        F,
        torch.ones(1, 1, dtype=torch.float64),
        method="langevin",
        n_restarts=n,
        n_steps=300,
        step_size=0.01,
        bounds=(-2, 2),
        generator=generator,
    )
    assert int(modes.n_modes[0]) == 2
    counts = torch.round(modes.weight[0] * n)
    assert_binomial_proportions(counts, [0.5, 0.5])


def test_enumeration_and_gibbs_for_discrete_answers(generator):
    F = DiscreteConditionalEnergy(3, 4, hidden=(8,), generator=generator).double()
    x = torch.randn(5, 3, dtype=torch.float64, generator=generator)
    modes = infer(F, x, beta=2.0)
    e = F.energies(x).detach()
    assert modes.y.shape == (5, 4) and modes.n_modes.tolist() == [4] * 5
    assert torch.equal(modes.y[:, 0], e.argmin(1))
    assert bool((modes.energy[:, :-1] <= modes.energy[:, 1:]).all())
    p = gibbs_conditional(F, x, beta=2.0)
    assert torch.allclose(p.probs, torch.softmax(-2.0 * e, 1))
    assert torch.allclose(modes.weight, p.probs.gather(1, modes.y))
    assert infer(F, x, max_modes=2).y.shape == (5, 2)


def test_discrete_sampling_matches_gibbs(generator):
    F = DiscreteConditionalEnergy(2, 3, hidden=(4,), generator=generator).double()
    x = torch.randn(1, 2, dtype=torch.float64, generator=generator)
    draws = sample_conditional(F, x, 20_000, beta=0.7, generator=generator)
    counts = torch.bincount(draws[0], minlength=3)
    assert_binomial_proportions(counts, gibbs_conditional(F, x, 0.7).probs[0])


def test_langevin_samples_of_quadratic_match_gaussian(generator):
    # P(y | x) = N(m(x), 1 / (beta a)); independent chain end states.
    F = QuadraticConditionalEnergy(1, 1, precision=torch.tensor([[2.0]]), generator=generator)
    F = F.double()
    x = torch.tensor([[0.7]], dtype=torch.float64)
    beta = 2.0
    y = sample_conditional(
        F, x, 2000, beta=beta, method="mala", n_steps=100, step_size=0.1, generator=generator
    )[0]
    mu = float(F.mean(x).detach())
    assert_mean_within_mcse(y[:, None], mu)
    assert_variance_within_mcse(y[:, None], mu, 1.0 / (beta * 2.0))


def test_latent_enumeration_min_and_free_energy():
    class Joint(nn.Module):
        def forward(self, x, y, z):
            return ((y - z * x) ** 2).sum(-1) + 0.3 * z[:, 0]

    z = torch.tensor([[-1.0], [0.0], [1.0]], dtype=torch.float64)
    x = torch.randn(6, 1, dtype=torch.float64)
    y = torch.randn(6, 1, dtype=torch.float64)
    e = torch.stack([Joint()(x, y, zk.expand(6, 1)) for zk in z], 1)
    f_min = LatentConditionalEnergy(Joint(), 1, 1, latent_values=z)
    f_free = LatentConditionalEnergy(Joint(), 1, 1, latent_values=z, reduction="free", beta=2.0)
    assert torch.allclose(f_min(x, y), e.min(1).values)
    assert torch.allclose(f_free(x, y), -torch.logsumexp(-2.0 * e, 1) / 2.0)
    assert bool((f_free(x, y) <= f_min(x, y)).all())
    cold = LatentConditionalEnergy(Joint(), 1, 1, latent_values=z, reduction="free", beta=1e4)
    assert torch.allclose(cold(x, y), f_min(x, y), atol=1e-3)
    assert torch.equal(f_min.infer_latent(x, y), z[e.argmin(1)])


def test_latent_descent_min_is_exact_with_right_gradients():
    # min_z (y - z x)^2 + z^2 = y^2 / (1 + x^2), at z* = x y / (1 + x^2).
    class Joint(nn.Module):
        def forward(self, x, y, z):
            return ((y - z * x) ** 2).sum(-1) + (z**2).sum(-1)

    F = LatentConditionalEnergy(Joint(), 1, 1, latent_dim=1, n_steps=200)
    x = torch.randn(5, 1, dtype=torch.float64)
    y = torch.randn(5, 1, dtype=torch.float64, requires_grad=True)
    e = F(x, y)
    assert torch.allclose(e, (y**2 / (1 + x**2))[:, 0], atol=1e-8)
    (g,) = torch.autograd.grad(e.sum(), y)
    assert torch.allclose(g, 2 * y / (1 + x**2), atol=1e-6)


def test_latent_grid_free_energy_is_a_quadrature():
    # E = (z - y)^2 / 2: integral over z of exp(-E) is sqrt(2 pi) for every y.
    class Joint(nn.Module):
        def forward(self, x, y, z):
            return 0.5 * ((z - y) ** 2).sum(-1)

    z, log_v = latent_grid([(-10.0, 10.0)], 400)
    F = LatentConditionalEnergy(
        Joint(), 1, 1, latent_values=z.double(), log_volume=log_v, reduction="free"
    )
    f = F(torch.zeros(3, 1, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64))
    assert torch.allclose(f, torch.full((3,), -0.5 * math.log(2 * math.pi), dtype=torch.float64))
    with pytest.raises(ValueError, match="needs latent_values"):
        LatentConditionalEnergy(Joint(), 1, 1, latent_dim=1, reduction="free")


def test_cluster_answers_drops_non_finite_and_counts():
    y = torch.tensor([[[0.0], [0.005], [1.0], [float("nan")], [2.0]]])
    e = torch.tensor([[0.0, 0.1, -1.0, 0.0, float("inf")]])
    m = cluster_answers(y, e, tol=0.01)
    assert m.n_modes.tolist() == [2]
    assert m.y[0, :, 0].tolist() == [1.0, 0.0]
    assert m.weight[0].tolist() == pytest.approx([1 / 3, 2 / 3])


def test_descend_adapts_to_the_scale_and_respects_bounds():
    for scale in (1e-3, 1.0, 1e3):

        def bowl(v, scale=scale):
            return scale * (v - 0.3).pow(2).sum(-1)

        y, _ = descend(bowl, torch.zeros(2, 1), n_steps=200)
        assert torch.allclose(y, torch.full((2, 1), 0.3), atol=1e-3), scale
    y, _ = descend(lambda v: (v - 5.0).pow(2).sum(-1), torch.zeros(1, 1), bounds=[(-1.0, 1.0)])
    assert float(y) == 1.0


def test_restart_points_cover_every_stratum(generator):
    pts = restart_points([(0.0, 1.0), (-2.0, 2.0)], 10, generator=generator)
    for d, (lo, hi) in enumerate([(0.0, 1.0), (-2.0, 2.0)]):
        strata = torch.floor((pts[:, d] - lo) / (hi - lo) * 10).long()
        assert sorted(strata.tolist()) == list(range(10))


def test_fit_conditional_learns_the_quadratic_mean(generator):
    F = QuadraticConditionalEnergy(2, 1, generator=generator).double()
    x = torch.randn(512, 2, dtype=torch.float64, generator=generator)
    y = x @ torch.tensor([[1.5], [-0.5]], dtype=torch.float64) + 0.3
    y = y + 0.1 * torch.randn(512, 1, dtype=torch.float64, generator=generator)
    losses = fit_conditional(F, x, y, "nll", n_steps=400, lr=0.05, generator=generator)
    assert float(losses[-50:].mean()) < float(losses[:10].mean())
    w = F.mean_net[0].weight.detach()[0]
    assert torch.allclose(w, torch.tensor([1.5, -0.5], dtype=torch.float64), atol=0.05)
    # Learned precision ~ 1 / 0.1^2 = 100 (closed-form log Z in the nll).
    assert 50 < float(F.precision().detach()) < 200
    with pytest.raises(ValueError, match="same number"):
        fit_conditional(F, x, y[:3])

"""Contract and exactness tests for the 2-D toy distributions."""

from __future__ import annotations

import math

import pytest
import torch

from ebmlab.data import (
    TOYS,
    Checkerboard,
    EightGaussians,
    Pinwheel,
    Rings,
    Spirals,
    Toy,
    TwoMoons,
    make_toy,
)
from ebmlab.errors import ConfigError

NAMES = sorted(TOYS)
DENSITY_NAMES = [name for name in NAMES if TOYS[name].has_log_prob]


def grid_integral(toy: Toy, h: float = 0.01) -> float:
    """Midpoint rule of exp(log_prob) over ``toy.bounds`` with cell side ``h``."""
    xmin, xmax, ymin, ymax = toy.bounds
    xs = torch.arange(xmin + h / 2, xmax, h, dtype=torch.float64)
    ys = torch.arange(ymin + h / 2, ymax, h, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")
    log_p = toy.log_prob(torch.stack([gx.ravel(), gy.ravel()], dim=1))
    return float(log_p.exp().sum() * h * h)


def assert_within_se(observed: float, expected: float, se: float, z: float = 4.0) -> None:
    print(f"observed={observed:.6f} expected={expected:.6f} se={se:.2e}")
    assert abs(observed - expected) <= z * se + 1e-12


# --- contract, every toy ------------------------------------------------------------------


def test_registry_names() -> None:
    assert set(TOYS) == {
        "eight_gaussians",
        "two_moons",
        "rings",
        "checkerboard",
        "spirals",
        "pinwheel",
    }
    assert {TOYS[n] for n in NAMES} == {
        EightGaussians,
        TwoMoons,
        Rings,
        Checkerboard,
        Spirals,
        Pinwheel,
    }
    assert DENSITY_NAMES == ["checkerboard", "eight_gaussians", "rings"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_and_dtype(name: str, dtype: torch.dtype) -> None:
    x = make_toy(name).sample(257, seed=1, dtype=dtype)
    assert x.shape == (257, 2)
    assert x.dtype == dtype
    assert torch.isfinite(x).all()
    assert make_toy(name).sample(0, seed=1).shape == (0, 2)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_reproducibility(name: str) -> None:
    toy = make_toy(name)
    a = toy.sample(500, seed=7)
    assert torch.equal(a, toy.sample(500, seed=7))
    assert torch.equal(a, make_toy(name).sample(500, generator=torch.Generator().manual_seed(7)))
    assert not torch.equal(a, toy.sample(500, seed=8))
    gen = torch.Generator().manual_seed(7)
    assert not torch.equal(toy.sample(500, generator=gen), toy.sample(500, generator=gen))


@pytest.mark.parametrize("name", NAMES)
def test_global_rng_untouched(name: str) -> None:
    state = torch.get_rng_state()
    make_toy(name).sample(100, seed=0)
    make_toy(name).sample(100)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("name", NAMES)
def test_samples_inside_bounds(name: str) -> None:
    toy = make_toy(name)
    xmin, xmax, ymin, ymax = toy.bounds
    assert xmin < xmax and ymin < ymax
    x = toy.sample(20_000, seed=0, dtype=torch.float64)
    inside = (x[:, 0] >= xmin) & (x[:, 0] <= xmax) & (x[:, 1] >= ymin) & (x[:, 1] <= ymax)
    # Bounds hold the support widened by 5 noise std: expected mass outside < 1e-6.
    assert inside.double().mean() >= 1 - 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_fits_about_plus_minus_three(name: str) -> None:
    bounds = make_toy(name).bounds
    assert all(abs(b) <= 3.8 for b in bounds)
    x = make_toy(name).sample(10_000, seed=0)
    assert (x.abs() <= 3.0).double().mean() > 0.99


@pytest.mark.parametrize("name", NAMES)
def test_repr(name: str) -> None:
    toy = make_toy(name)
    assert repr(toy).startswith(type(toy).__name__ + "(")
    assert eval(repr(toy), {c.__name__: c for c in TOYS.values()}).bounds == toy.bounds


@pytest.mark.parametrize("name", NAMES)
def test_bad_sample_arguments(name: str) -> None:
    toy = make_toy(name)
    with pytest.raises(ValueError, match="n must be"):
        toy.sample(-1)
    with pytest.raises(ValueError, match="not both"):
        toy.sample(3, seed=0, generator=torch.Generator())
    with pytest.raises(ValueError, match="dtype"):
        toy.sample(3, dtype=torch.int64)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in DENSITY_NAMES])
def test_no_density_raises(name: str) -> None:
    toy = make_toy(name)
    assert not toy.has_log_prob
    with pytest.raises(NotImplementedError, match="no closed-form density"):
        toy.log_prob(torch.zeros(3, 2))
    with pytest.raises(NotImplementedError, match="no closed-form density"):
        toy.entropy()


# --- make_toy -----------------------------------------------------------------------------


def test_make_toy_unknown_name_lists_valid() -> None:
    with pytest.raises(ConfigError) as info:
        make_toy("nine_gaussians")
    for name in NAMES:
        assert name in str(info.value)


def test_make_toy_kwargs() -> None:
    toy = make_toy("eight-gaussians", radius=3.0, std=0.5)
    assert isinstance(toy, EightGaussians)
    assert (toy.radius, toy.std) == (3.0, 0.5)
    with pytest.raises(ConfigError, match=r"unknown argument.*sigma.*valid: radius, std"):
        make_toy("eight_gaussians", sigma=0.3)
    with pytest.raises(ValueError, match="std must be"):
        make_toy("rings", std=-1.0)


# --- densities ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", DENSITY_NAMES)
def test_log_prob_normalized(name: str) -> None:
    # Midpoint rule, h = 0.01: the Gaussian and ring profiles have std >= 0.08 = 8 h, where
    # the rule's error is far below 1e-6; the checkerboard squares align with the grid, so
    # the rule is exact; mass outside the bounds is < 1e-6. 1e-3 leaves ample margin.
    assert grid_integral(make_toy(name)) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name", DENSITY_NAMES)
def test_log_prob_shape_dtype_and_finite_on_samples(name: str) -> None:
    toy = make_toy(name)
    for dtype in (torch.float32, torch.float64):
        x = toy.sample(5000, seed=3, dtype=dtype)
        log_p = toy.log_prob(x)
        assert log_p.shape == (5000,)
        assert log_p.dtype == dtype
        assert torch.isfinite(log_p).all()
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        toy.log_prob(torch.zeros(4, 3))


@pytest.mark.parametrize("name", DENSITY_NAMES)
def test_log_prob_consistent_with_samples(name: str) -> None:
    """Mean -log p over fresh samples matches entropy() within 4 combined SE."""
    toy = make_toy(name)
    h, se = toy.entropy()
    n = 100_000
    log_p = toy.log_prob(toy.sample(n, seed=12345, dtype=torch.float64))
    se_fresh = float(log_p.std()) / math.sqrt(n)
    assert_within_se(float(-log_p.mean()), h, math.hypot(se, se_fresh))


def test_eight_gaussians_matches_torch_distributions() -> None:
    toy = EightGaussians(radius=1.5, std=0.4)
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.full((8,), 1 / 8, dtype=torch.float64)),
        torch.distributions.Independent(torch.distributions.Normal(toy.centers(), 0.4), 1),
    )
    x = 3 * torch.randn(1000, 2, dtype=torch.float64)
    torch.testing.assert_close(toy.log_prob(x), mix.log_prob(x))


def test_eight_gaussians_entropy_near_well_separated_value() -> None:
    toy = EightGaussians()
    h, se = toy.entropy()
    analytic = math.log(8) + math.log(2 * math.pi * math.e * toy.std**2)
    # Exactly H = analytic - E[H(K | X)] (K the component): overlap only lowers the entropy.
    # Neighbouring centres are 6.1 std apart, where E[H(K | X)] is about 0.006 nats.
    gap = analytic - h
    print(f"entropy={h:.5f} se={se:.2e} analytic={analytic:.5f} gap={gap:.5f}")
    assert -4 * se <= gap <= 0.01 + 4 * se

    # Sharper: estimate E[H(K | X)] from component posteriors computed independently.
    x = toy.sample(100_000, seed=99, dtype=torch.float64)
    d2 = ((x[:, None, :] - toy.centers()) ** 2).sum(-1)
    post = torch.softmax(-d2 / (2 * toy.std**2), dim=1)
    cond = -(post * post.clamp_min(1e-300).log()).sum(1)
    se_cond = float(cond.std()) / math.sqrt(len(cond))
    assert_within_se(h, analytic - float(cond.mean()), math.hypot(se, se_cond))


def test_checkerboard_entropy_is_log8() -> None:
    toy = Checkerboard()
    h, se = toy.entropy()
    assert h == pytest.approx(math.log(8), abs=1e-12)
    assert se < 1e-12


def test_checkerboard_support() -> None:
    toy = Checkerboard()
    black = torch.tensor([[-1.5, -1.5], [-0.5, -0.5], [1.5, -0.5], [0.5, 0.5], [-1.0, -1.5]])
    white = torch.tensor([[-0.5, -1.5], [1.5, 0.5], [-1.5, 1.5], [2.5, 0.0], [0.0, -3.0]])
    assert torch.all(toy.log_prob(black) == -math.log(8))
    assert torch.all(toy.log_prob(white) == -math.inf)
    x = toy.sample(10_000, seed=0)
    cells = torch.floor(x.double() + 2).clamp(0, 3)
    assert torch.all(torch.remainder(cells.sum(1), 2) == 0)


def test_rings_density_is_radial_mixture() -> None:
    toy = Rings(radii=(1.0,), std=0.1)
    # On the ring itself: N(0; 0, s^2) / (2 pi r), folded term negligible.
    x = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    expected = -0.5 * math.log(2 * math.pi * 0.01) - math.log(2 * math.pi)
    torch.testing.assert_close(toy.log_prob(x), torch.full((2,), expected, dtype=torch.float64))
    radius = toy.sample(20_000, seed=0, dtype=torch.float64).norm(dim=1)
    assert abs(float(radius.mean()) - 1.0) < 4 * 0.1 / math.sqrt(20_000)


def test_rings_exact_with_wide_noise() -> None:
    # std comparable to the radius: many draws have negative signed radius, which the
    # folded-normal density accounts for exactly.
    # Without the folded term the mass would be Phi(1) = 0.84. The density has a 1/rho spike at
    # the origin that a Cartesian grid resolves poorly, so integrate in polar coordinates:
    # mass = int 2 pi rho p(rho) d rho (midpoint rule, h = 1e-3, smooth integrand), after
    # checking that p is isotropic.
    toy = Rings(radii=(0.3,), std=0.3)
    rho = torch.arange(0.0005, toy.bounds[1], 0.001, dtype=torch.float64)
    log_p = [
        toy.log_prob(torch.stack([rho * math.cos(a), rho * math.sin(a)], dim=1))
        for a in (0.0, 1.0, 2.5, 4.0)
    ]
    for other in log_p[1:]:
        torch.testing.assert_close(other, log_p[0])
    mass = float((2 * math.pi * rho * log_p[0].exp()).sum() * 0.001)
    assert mass == pytest.approx(1.0, abs=1e-4)
    h, se = toy.entropy(100_000)
    log_p = toy.log_prob(toy.sample(100_000, seed=5, dtype=torch.float64))
    se_fresh = float(log_p.std()) / math.sqrt(100_000)
    assert_within_se(float(-log_p.mean()), h, math.hypot(se, se_fresh))


def test_pinwheel_has_blades() -> None:
    x = Pinwheel(n_classes=3).sample(3000, seed=0, dtype=torch.float64)
    radius = x.norm(dim=1) / 1.5
    assert abs(float(radius.mean()) - 1.0) < 0.05

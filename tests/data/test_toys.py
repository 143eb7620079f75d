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
from helpers import assert_tv_below

NAMES = sorted(TOYS)
DENSITY_NAMES = [name for name in NAMES if TOYS[name].has_log_prob]
# Densities by quadrature are slower to evaluate; their normalization and agreement with the
# sampler are checked on a coarser grid by test_quadrature_density_matches_histogram below.
CLOSED_FORM_NAMES = ["checkerboard", "eight_gaussians", "rings"]


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
    assert DENSITY_NAMES == NAMES  # every toy has an exact (or quadrature) density


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


class _NoDensity(Toy):
    """A user toy that gives samples but no density."""

    name = "no_density"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (-1.0, 1.0, -1.0, 1.0)

    def _sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(n, 2, generator=generator, dtype=torch.float64) * 2 - 1


def test_no_density_raises() -> None:
    toy = _NoDensity()
    assert not toy.has_log_prob
    assert toy.sample(4, seed=0).shape == (4, 2)
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


@pytest.mark.parametrize("name", CLOSED_FORM_NAMES)
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


@pytest.mark.parametrize("name", CLOSED_FORM_NAMES)
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


# --- densities by quadrature: two moons, spirals, pinwheel ----------------------------------

QUADRATURE_NAMES = ["two_moons", "spirals", "pinwheel"]


@pytest.mark.parametrize("name", QUADRATURE_NAMES)
def test_quadrature_density_matches_histogram(name: str) -> None:
    """Cell probabilities from log_prob (0.2 x 0.2 cells, 10 x 10 midpoints each) sum to 1
    within 1e-3 and match a histogram of 200k samples within the total-variation bound.

    A density that is not the sampler's (wrong centre, scale, noise or Jacobian) moves far
    more than the bound (about 0.03) of mass between cells.
    """
    toy = make_toy(name)
    xmin, xmax, ymin, ymax = toy.bounds
    cell, sub = 0.2, 10
    nx, ny = round((xmax - xmin) / cell), round((ymax - ymin) / cell)
    assert nx * cell == pytest.approx(xmax - xmin) and ny * cell == pytest.approx(ymax - ymin)
    h = cell / sub
    xs = xmin + h * (torch.arange(nx * sub, dtype=torch.float64) + 0.5)
    ys = ymin + h * (torch.arange(ny * sub, dtype=torch.float64) + 0.5)
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")
    density = toy.log_prob(torch.stack([gx.ravel(), gy.ravel()], dim=1)).exp()
    probs = density.reshape(nx, sub, ny, sub).sum((1, 3)).ravel() * h * h
    total = float(probs.sum())
    print(f"{name}: mass inside the bounds {total:.8f}")
    assert total == pytest.approx(1.0, abs=1e-3)
    n = 200_000
    x = toy.sample(n, seed=11, dtype=torch.float64)
    ix = torch.floor((x[:, 0] - xmin) / cell).long()
    iy = torch.floor((x[:, 1] - ymin) / cell).long()
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    counts = torch.bincount(ix[inside] * ny + iy[inside], minlength=nx * ny)
    counts = torch.cat([counts, (~inside).sum().reshape(1)])
    probs = torch.cat([probs, torch.tensor([max(0.0, 1.0 - total)], dtype=torch.float64)])
    assert_tv_below(counts, probs / probs.sum())


def _dense_curve_log_prob(x: torch.Tensor, curves: list, std: float) -> torch.Tensor:
    """log sum_curves int w(t) N(x; c(t), std^2 I) dt by a dense rule per curve.

    ``curves``: ``(c, w)`` pairs, ``c`` of shape (T, 2) at the rule's nodes and
    ``w`` (T,) the parameter density times the rule's weights.
    """
    terms = []
    for c, w in curves:
        d2 = ((x[:, None, :] - c[None]) ** 2).sum(-1)
        terms.append(torch.logsumexp(torch.log(w) - d2 / (2 * std**2), dim=1))
    return torch.logsumexp(torch.stack(terms), dim=0) - math.log(2 * math.pi * std**2)


def _simpson(n: int, a: float, b: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of Simpson's rule with ``n`` (odd) nodes on ``[a, b]``."""
    t = torch.linspace(a, b, n, dtype=torch.float64)
    w = torch.full((n,), 2.0, dtype=torch.float64)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return t, w * (b - a) / (3 * (n - 1))


def _check_points_for(toy: Toy) -> torch.Tensor:
    """400 samples and 200 uniform points in the bounds."""
    xmin, xmax, ymin, ymax = toy.bounds
    u = torch.rand(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    box = torch.tensor([xmin, ymin], dtype=torch.float64)
    span = torch.tensor([xmax - xmin, ymax - ymin], dtype=torch.float64)
    return torch.cat([toy.sample(400, seed=2, dtype=torch.float64), box + span * u])


def _assert_close_where_dense(log_p: torch.Tensor, expected: torch.Tensor) -> None:
    """Agreement to 1e-6 nats wherever log p > -25 (all the data and their surroundings);
    further out the reference rules themselves lose digits (steep integrands)."""
    dense = expected > -25
    assert dense[:400].all()
    torch.testing.assert_close(log_p[dense], expected[dense], atol=1e-6, rtol=0)


def test_two_moons_density_matches_dense_rule() -> None:
    toy = TwoMoons()
    s, std = 4.0 / 3.0, 4.0 / 3.0 * toy.noise
    t, w = _simpson(4001, 0.0, math.pi)
    arc = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    centre = torch.tensor([0.5, 0.25], dtype=torch.float64)
    upper = s * (arc - centre)
    lower = s * (torch.tensor([1.0, 0.5], dtype=torch.float64) - arc - centre)
    x = _check_points_for(toy)
    half = w / (2 * math.pi)  # moon probability 1/2, t uniform on [0, pi]
    expected = _dense_curve_log_prob(x, [(upper, half), (lower, half)], std)
    _assert_close_where_dense(toy.log_prob(x), expected)


def test_spirals_density_matches_dense_rule() -> None:
    toy = Spirals()
    s, w = _simpson(8001, 0.0, 1.0)
    curves = []
    for arm in (0, 1):
        theta = 2 * math.pi * toy.n_turns * s + math.pi * arm
        c = toy.radius * s[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
        curves.append((c, (w * s).clamp_min(1e-300)))  # density 2s, arm probability 1/2
    x = _check_points_for(toy)
    expected = _dense_curve_log_prob(x, curves, toy.noise)
    _assert_close_where_dense(toy.log_prob(x), expected)


def test_pinwheel_density_matches_brute_force_preimages() -> None:
    """Change of variables, every preimage found on a dense grid (20001 values of f1) and
    polished by Newton steps."""
    toy = Pinwheel()
    x = _check_points_for(toy)
    u = x / toy.scale
    rho = u.norm(dim=1)
    psi = torch.atan2(u[:, 1], u[:, 0])
    grid = torch.linspace(-1, 1, 20_001, dtype=torch.float64)
    total = torch.zeros(len(x), dtype=torch.float64)
    for k in range(toy.n_classes):
        phase = psi + 2 * math.pi * k / toy.n_classes
        f1 = rho[:, None] * grid
        h = f1 - rho[:, None] * torch.cos(phase[:, None] + toy.rate * torch.exp(f1))
        i, j = torch.nonzero((h[:, :-1] <= 0) != (h[:, 1:] <= 0), as_tuple=True)
        root = f1[i, j] - h[i, j] * (f1[i, j + 1] - f1[i, j]) / (h[i, j + 1] - h[i, j])
        for _ in range(5):
            a = toy.rate * torch.exp(root)
            value = root - rho[i] * torch.cos(phase[i] + a)
            root = root - value / (1 + rho[i] * a * torch.sin(phase[i] + a))
        a = toy.rate * torch.exp(root)
        f2 = rho[i] * torch.sin(phase[i] + a)
        log_dens = (
            -0.5 * ((root - 1) / toy.radial_std) ** 2
            - 0.5 * (f2 / toy.tangential_std) ** 2
            - math.log(2 * math.pi * toy.radial_std * toy.tangential_std)
            - torch.log(toy.scale**2 * (1 + a * f2).abs() * toy.n_classes)
        )
        total.index_add_(0, i, log_dens.exp())
    _assert_close_where_dense(toy.log_prob(x), total.log())

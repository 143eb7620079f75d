"""Contract tests for every energy, plus exact checks of the closed-form targets."""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

import ebmlab.energies as energies_module
from ebmlab.energies import (
    ClassifierEnergy,
    ConvEnergy,
    Energy,
    Gaussian,
    GaussianMixture,
    KMeansEnergy,
    MLPEnergy,
    NoiseConditionalImageEnergy,
    PCAEnergy,
    ResNetEnergy,
    SparseCodingEnergy,
    SumEnergy,
    Tempered,
    energy_and_grad,
    score,
)
from ebmlab.energies.classifier import make_mlp
from helpers import (
    assert_ks_marginals,
    assert_mean_within_mcse,
    assert_variance_within_mcse,
    mixture_marginal_cdf,
)

F64 = torch.float64


def random_spd(d: int, g: torch.Generator) -> Tensor:
    a = torch.randn(d, d, generator=g, dtype=F64)
    return a @ a.T / d + 0.5 * torch.eye(d, dtype=F64)


def _mlp(g: torch.Generator, *args: object, **kwargs: object) -> MLPEnergy:
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=g)))
        return MLPEnergy(*args, **kwargs).to(F64)  # type: ignore[arg-type]


def _seeded(g: torch.Generator, cls: type[Energy], *args: object, **kwargs: object) -> Energy:
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=g)))
        return cls(*args, **kwargs).to(F64)  # type: ignore[call-arg]


def _gaussian(g: torch.Generator, d: int = 3) -> Gaussian:
    return Gaussian(torch.randn(d, generator=g, dtype=F64), random_spd(d, g))


@dataclass(frozen=True)
class Case:
    build: Callable[[torch.Generator], Energy]
    repr_has: tuple[str, ...]


CASES: dict[str, Case] = {
    "classifier_mlp": Case(
        lambda g: ClassifierEnergy(make_mlp([3, 8, 4], "silu", g, F64), 4, event_shape=(3,)).to(
            F64
        ),
        ("ClassifierEnergy", "n_classes=4", "event_shape=(3,)"),
    ),
    "classifier_conv_trunk": Case(
        lambda g: ClassifierEnergy(
            _seeded(g, ConvEnergy, (1, 6, 6), channels=(4,), hidden=8), 3
        ).to(F64),
        ("ClassifierEnergy", "n_classes=3", "event_shape=(1, 6, 6)"),
    ),
    "mlp": Case(
        lambda g: _mlp(g, 3, hidden=(8, 8)),
        ("MLPEnergy", "hidden=(8, 8)", "activation='silu'", "spectral_norm=False"),
    ),
    "mlp_spectral_norm": Case(
        lambda g: _mlp(g, (2, 3), hidden=(8,), activation="elu", spectral_norm=True),
        ("MLPEnergy", "event_shape=(2, 3)", "spectral_norm=True", "activation='elu'"),
    ),
    "mlp_base_scale": Case(
        lambda g: _mlp(g, (1, 4, 4), hidden=(8,), activation="softplus", base_scale=2.0),
        ("MLPEnergy", "base_scale=2.0", "event_shape=(1, 4, 4)"),
    ),
    "conv": Case(
        lambda g: _seeded(g, ConvEnergy, (1, 8, 8), channels=(4, 8), hidden=8),
        ("ConvEnergy", "channels=(4, 8)", "hidden=8", "spectral_norm=False"),
    ),
    "conv_spectral_norm_rgb": Case(
        lambda g: _seeded(
            g, ConvEnergy, (3, 7, 5), channels=(4, 4, 4), activation="elu", spectral_norm=True
        ),
        ("ConvEnergy", "event_shape=(3, 7, 5)", "spectral_norm=True", "activation='elu'"),
    ),
    "resnet": Case(
        lambda g: _seeded(g, ResNetEnergy, (1, 6, 6), channels=(4, 6), depth=2),
        ("ResNetEnergy", "channels=(4, 6)", "depth=2", "spectral_norm=False"),
    ),
    "resnet_spectral_norm": Case(
        lambda g: _seeded(
            g, ResNetEnergy, (2, 5, 9), channels=(4,), spectral_norm=True, base_scale=2.0
        ),
        ("ResNetEnergy", "event_shape=(2, 5, 9)", "spectral_norm=True", "base_scale=2.0"),
    ),
    "noise_conditional_image": Case(
        lambda g: NoiseConditionalImageEnergy(
            _seeded(g, ConvEnergy, (2, 6, 6), channels=(4,), hidden=8), 0.05, 1.0, 0.5
        ).to(F64),
        ("NoiseConditionalImageEnergy", "sigma_min=0.05", "sigma_data=0.5", "ConvEnergy"),
    ),
    "gaussian": Case(lambda g: _gaussian(g), ("Gaussian", "dim=3")),
    "mixture_full": Case(
        lambda g: GaussianMixture(
            torch.rand(2, generator=g, dtype=F64) + 0.1,
            torch.randn(2, 3, generator=g, dtype=F64),
            torch.stack([random_spd(3, g), random_spd(3, g)]),
        ),
        ("GaussianMixture", "n_components=2", "dim=3"),
    ),
    "mixture_isotropic": Case(
        lambda g: GaussianMixture(
            torch.rand(3, generator=g, dtype=F64) + 0.1,
            torch.randn(3, 2, generator=g, dtype=F64),
            torch.rand(3, generator=g, dtype=F64) + 0.2,
        ),
        ("GaussianMixture", "n_components=3", "dim=2"),
    ),
    "tempered": Case(
        lambda g: Tempered(_mlp(g, 3, hidden=(8,), activation="tanh"), temperature=2.0),
        ("Tempered", "temperature=2.0", "MLPEnergy"),
    ),
    "sum": Case(
        lambda g: SumEnergy(_gaussian(g), _mlp(g, 3, hidden=(8,), activation="gelu")),
        ("SumEnergy", "Gaussian", "MLPEnergy"),
    ),
    "pca": Case(lambda g: PCAEnergy(3, 1, generator=g).to(F64), ("PCAEnergy", "n_components=1")),
    "kmeans": Case(lambda g: KMeansEnergy(3, 4, generator=g).to(F64), ("KMeansEnergy",)),
    # Undercomplete and run to convergence: the gradient (envelope theorem) is exact
    # at the minimum only.
    "sparse_coding": Case(
        lambda g: SparseCodingEnergy(3, 2, n_steps=2000, generator=g).to(F64),
        ("SparseCodingEnergy", "n_atoms=2"),
    ),
}


def build(name: str, seed: int = 0) -> Energy:
    energy = CASES[name].build(torch.Generator().manual_seed(seed))
    # eval(): spectral norm runs a power iteration at every training-mode forward,
    # so repeated evaluations would differ slightly.
    return energy.eval()


def inputs(energy: Energy, n: int = 7, seed: int = 1, dtype: torch.dtype = F64) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *energy.event_shape, generator=g, dtype=F64).to(dtype)


case_names = pytest.mark.parametrize("name", list(CASES))


def test_every_energy_class_is_covered():
    exported = {
        obj
        for obj in vars(energies_module).values()
        if inspect.isclass(obj) and issubclass(obj, Energy) and obj is not Energy
    }
    covered = {type(build(name)) for name in CASES}
    assert exported <= covered, f"no contract case for {exported - covered}"
    mlps = [build(n) for n in CASES if isinstance(build(n), MLPEnergy)]
    assert {m.spectral_norm for m in mlps} == {False, True}
    assert {m.base_scale is None for m in mlps} == {False, True}


@case_names
def test_shape_and_finite(name, device):
    energy = build(name).to(device)
    x = inputs(energy).to(device)
    e = energy(x)
    assert e.shape == (7,)
    assert e.device.type == device.type
    assert bool(torch.isfinite(e).all()), e
    assert energy(x[:1]).shape == (1,)


@case_names
def test_gradient_reaches_every_parameter(name):
    energy = build(name).train()
    x = inputs(energy).requires_grad_(True)
    energy(x).sum().backward()
    assert x.grad is not None and bool((x.grad != 0).any()), "no gradient reaches x"
    for param_name, p in energy.named_parameters():
        assert p.grad is not None, f"no gradient reaches parameter {param_name!r}"
        assert bool(torch.isfinite(p.grad).all()), f"non-finite gradient for {param_name!r}"
        assert bool((p.grad != 0).any()), f"gradient of parameter {param_name!r} is zero"


@case_names
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(name, dtype):
    energy64 = build(name)
    energy = copy.deepcopy(energy64).to(dtype)
    x = inputs(energy64)
    e = energy(x.to(dtype))
    assert e.dtype == dtype
    e_, g_ = energy_and_grad(energy, x.to(dtype))
    assert e_.dtype == g_.dtype == dtype
    tol = {torch.float32: 1e-4, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(e.double(), energy64(x), rtol=tol, atol=tol)


@case_names
def test_safetensors_round_trip(name, tmp_path):
    energy = build(name, seed=0)
    path = tmp_path / "model.safetensors"
    save_file(energy.state_dict(), str(path))
    fresh = build(name, seed=123)
    x = inputs(energy)
    assert not torch.equal(fresh(x), energy(x)), "seeds should give different energies"
    fresh.load_state_dict(load_file(str(path)))
    assert torch.equal(fresh(x), energy(x))
    assert set(fresh.state_dict()) == set(energy.state_dict())


@case_names
def test_repr_is_informative(name):
    text = repr(build(name))
    for part in CASES[name].repr_has:
        assert part in text, f"{part!r} missing from repr:\n{text}"


@case_names
def test_energy_and_grad_matches_finite_differences(name):
    energy = build(name)
    x = inputs(energy, n=5)
    x_before = x.clone()
    e, g = energy_and_grad(energy, x)
    assert torch.equal(x, x_before)
    assert not e.requires_grad and not g.requires_grad
    assert g.shape == x.shape
    assert all(p.grad is None for p in energy.parameters()), "parameter .grad populated"
    torch.testing.assert_close(e, energy(x))
    torch.testing.assert_close(score(energy, x), -g)
    gen = torch.Generator().manual_seed(2)
    h = 1e-6
    for _ in range(3):
        v = torch.randn(x.shape, generator=gen, dtype=F64)
        fd = (energy(x + h * v) - energy(x - h * v)) / (2 * h)
        directional = (g * v).reshape(len(x), -1).sum(1)
        torch.testing.assert_close(directional, fd, rtol=1e-6, atol=1e-6)


def test_check_input_names_both_shapes():
    energy = build("mlp_spectral_norm")
    energy.check_input(torch.zeros(4, 2, 3))
    with pytest.raises(ValueError, match=r"\(N, 2, 3\).*\(4, 3, 2\)"):
        energy.check_input(torch.zeros(4, 3, 2))


# ---------------------------------------------------------------- closed-form targets


def grid_2d(center: Tensor, half_width: float, n: int = 801) -> tuple[Tensor, Tensor, Tensor]:
    """Axes ``(n,)``, ``(n,)`` and grid points ``(n * n, 2)`` (ij indexing)."""
    a = torch.linspace(-half_width, half_width, n, dtype=F64) + center[0]
    b = torch.linspace(-half_width, half_width, n, dtype=F64) + center[1]
    pts = torch.stack(torch.meshgrid(a, b, indexing="ij"), -1).reshape(-1, 2)
    return a, b, pts


def integrate_2d(values: Tensor, a: Tensor, b: Tensor) -> Tensor:
    v = values.reshape(len(a), len(b))
    return torch.trapezoid(torch.trapezoid(v, b, dim=1), a)


def test_gaussian_log_z_matches_quadrature_2d():
    mean = torch.tensor([0.5, -1.0], dtype=F64)
    cov = torch.tensor([[1.5, 0.6], [0.6, 0.8]], dtype=F64)
    g = Gaussian(mean, cov)
    a, b, pts = grid_2d(mean, 10.0)
    log_z_quad = torch.log(integrate_2d(torch.exp(-g(pts)), a, b))
    # the trapezoid rule converges spectrally for smooth, decaying integrands
    torch.testing.assert_close(log_z_quad, g.log_z, rtol=0, atol=1e-9)


def test_gaussian_closed_form_against_torch_distributions(generator):
    d = 5
    g = _gaussian(generator, d)
    reference = torch.distributions.MultivariateNormal(g.mean, g.covariance)
    x = torch.randn(11, d, generator=generator, dtype=F64)
    torch.testing.assert_close(g.log_prob(x), reference.log_prob(x))
    expected = 0.5 * d * math.log(2 * math.pi) + 0.5 * torch.logdet(g.covariance)
    torch.testing.assert_close(g.log_z, expected)
    torch.testing.assert_close(g.precision @ g.covariance, torch.eye(d, dtype=F64))
    # sign convention: the mean is the minimum of the energy
    assert float(g(g.mean[None])[0]) == 0.0
    assert bool((g(x) > 0).all())
    std = Gaussian.standard(3)
    assert std.mean.dtype == torch.get_default_dtype()
    torch.testing.assert_close(std.log_z, torch.tensor(1.5 * math.log(2 * math.pi)))


def test_gaussian_samples_match_mean_covariance_and_marginals(generator):
    g = _gaussian(generator, 3)
    x = g.sample(4000, generator=generator)
    assert x.shape == (4000, 3)
    assert x.dtype == F64
    assert_mean_within_mcse(x[:, None], g.mean)
    assert_variance_within_mcse(x[:, None], g.mean, torch.diagonal(g.covariance))
    sd = torch.diagonal(g.covariance).sqrt().numpy()
    from scipy.stats import norm

    assert_ks_marginals(x, lambda v: norm.cdf((v - g.mean.numpy()) / sd))
    # off-diagonal covariances: E[(x_i - mu_i)(x_j - mu_j)] = Sigma_ij
    r = x - g.mean
    i, j = torch.triu_indices(3, 3, offset=1)
    assert_mean_within_mcse((r[:, i] * r[:, j])[:, None], g.covariance[i, j])


def _mixture_2d() -> GaussianMixture:
    weights = torch.tensor([0.6, 0.3, 0.1], dtype=F64)
    means = torch.tensor([[-1.5, 0.0], [1.0, 1.5], [2.0, -2.0]], dtype=F64)
    covs = torch.stack(
        [
            torch.tensor([[0.5, 0.3], [0.3, 0.6]], dtype=F64),
            torch.tensor([[0.3, -0.1], [-0.1, 0.2]], dtype=F64),
            0.25 * torch.eye(2, dtype=F64),
        ]
    )
    return GaussianMixture(weights, means, covs)


def test_mixture_log_prob_is_normalized_2d():
    m = _mixture_2d()
    a, b, pts = grid_2d(torch.zeros(2, dtype=F64), 9.0)
    total = integrate_2d(torch.exp(m.log_prob(pts)), a, b)
    torch.testing.assert_close(total, torch.tensor(1.0, dtype=F64), rtol=0, atol=1e-9)
    assert float(m.log_z) == 0.0
    torch.testing.assert_close(m.log_prob(pts[:10]), -m(pts[:10]))


def test_mixture_log_prob_against_torch_distributions(generator):
    m = _mixture_2d()
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=m.log_weights),
        torch.distributions.MultivariateNormal(m.means, m.covariances),
    )
    x = 2 * torch.randn(50, 2, generator=generator, dtype=F64)
    torch.testing.assert_close(m.log_prob(x), reference.log_prob(x))
    iso = GaussianMixture(torch.ones(2), torch.tensor([[0.0, 0.0], [1.0, 1.0]]), 0.5)
    assert iso.covariances.shape == (2, 2, 2)
    torch.testing.assert_close(iso.covariances[1], 0.5 * torch.eye(2, dtype=iso.means.dtype))
    torch.testing.assert_close(iso.log_weights.exp(), torch.full((2,), 0.5))


def test_mixture_samples_follow_its_log_prob(generator):
    """Marginal CDFs by quadrature of ``exp(log_prob)`` on a grid vs the sampler (KS)."""
    m = _mixture_2d()
    a, b, pts = grid_2d(torch.zeros(2, dtype=F64), 9.0, n=1201)
    density = torch.exp(m.log_prob(pts)).reshape(len(a), len(b))
    marginals = [torch.trapezoid(density, b, dim=1), torch.trapezoid(density, a, dim=0)]
    cdfs = []
    for axis, pdf in zip((a, b), marginals, strict=True):
        steps = 0.5 * (pdf[1:] + pdf[:-1]) * (axis[1:] - axis[:-1])
        cdf = torch.cat([torch.zeros(1, dtype=F64), steps.cumsum(0)])
        cdfs.append((axis.numpy(), cdf.numpy()))

    def quadrature_cdf(x: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(x[:, i], *cdfs[i]) for i in range(2)], axis=1)

    x = m.sample(5000, generator=generator)
    assert x.shape == (5000, 2)
    assert_ks_marginals(x, quadrature_cdf)
    # and the closed-form marginals agree with the quadrature ones
    closed = mixture_marginal_cdf(
        m.log_weights.exp(), m.means, torch.diagonal(m.covariances, dim1=-2, dim2=-1)
    )
    probe = np.linspace(-4, 4, 50)[:, None].repeat(2, 1)
    np.testing.assert_allclose(closed(probe), quadrature_cdf(probe), atol=1e-4)


def test_composition_semantics(generator):
    g = _gaussian(generator, 3)
    x = torch.randn(6, 3, generator=generator, dtype=F64)
    hot = Tempered(g, temperature=2.0)
    torch.testing.assert_close(hot(x), Gaussian(g.mean, 2.0 * g.covariance)(x))
    # product of two Gaussians: precisions add
    h = _gaussian(generator, 3)
    poe = SumEnergy(g, h)
    p = g.precision + h.precision
    m = torch.linalg.solve(p, g.precision @ g.mean + h.precision @ h.mean)
    product = Gaussian(m, torch.linalg.inv(p))
    diff = poe(x) - product(x)
    torch.testing.assert_close(diff, diff[:1].expand(6))  # equal up to a constant


def _cov_not_symmetric() -> None:
    Gaussian(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.0, 1.0]]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Gaussian(torch.zeros(2, 2), torch.eye(2)), "mean"),
        (lambda: Gaussian(torch.zeros(2), torch.eye(3)), "covariance"),
        (_cov_not_symmetric, "covariance"),
        (lambda: Gaussian(torch.zeros(2), -torch.eye(2)), "covariance"),
        (lambda: GaussianMixture(torch.ones(2), torch.zeros(2), 1.0), "means"),
        (lambda: GaussianMixture(torch.ones(3), torch.zeros(2, 2), 1.0), "weights"),
        (lambda: GaussianMixture(torch.tensor([1.0, -1.0]), torch.zeros(2, 2), 1.0), "weights"),
        (lambda: GaussianMixture(torch.ones(2), torch.zeros(2, 2), torch.ones(3)), "covariances"),
        (lambda: GaussianMixture(torch.ones(2), torch.zeros(2, 2), torch.ones(2, 3, 3)), "covar"),
        (lambda: GaussianMixture(torch.ones(2), torch.zeros(2, 2), -1.0), "covariance"),
        (lambda: MLPEnergy(2, hidden=(4,), activation="relu6"), "activation"),
        (lambda: MLPEnergy(2, hidden=(4,), base_scale=0.0), "base_scale"),
        (lambda: MLPEnergy(2, hidden=(4, 0)), "hidden"),
        (lambda: MLPEnergy((2, 0), hidden=(4,)), "event_shape"),
        (lambda: Tempered(Gaussian.standard(2), temperature=0.0), "temperature"),
        (lambda: ConvEnergy((8, 8)), "event_shape"),
        (lambda: ConvEnergy((1, 8, 8), channels=()), "channels"),
        (lambda: ConvEnergy((1, 8, 8), hidden=0), "hidden"),
        (lambda: ResNetEnergy((1, 8, 8), depth=0), "depth"),
        (lambda: ResNetEnergy((1, 8, 8), activation="relu6"), "activation"),
        (lambda: SumEnergy(), "energy"),
        (lambda: SumEnergy(Gaussian.standard(2), Gaussian.standard(3)), "event_shape"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(make, match):
    with pytest.raises(ValueError, match=match):
        make()

"""Statistical tests of the samplers against targets with known moments.

Tolerances come from the sample: ``|mean - mu| < z sd / sqrt(ESS)`` per
coordinate (z = 4, Bonferroni), the same on ``(x - mu)^2`` and on cross
products for (co)variances, KS per marginal for independent end states and
binomial standard errors for mode proportions. MALA and HMC must be exact;
ULA is tested against its own, exactly known, stationary law.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm
from torch import Tensor

from ebmlab.energies import Energy, Gaussian, GaussianMixture
from ebmlab.samplers import HMC, MALA, Langevin, run
from helpers import (
    assert_binomial_proportions,
    assert_ks_marginals,
    assert_mean_within_mcse,
    assert_variance_within_mcse,
    mixture_marginal_cdf,
)

pytestmark = pytest.mark.slow

F64 = torch.float64


def correlated_gaussian(d: int) -> Gaussian:
    """Pairwise correlation 0.8, unequal scales and a mean away from the origin."""
    scales = torch.linspace(0.8, 1.5, d, dtype=F64)
    corr = torch.full((d, d), 0.8, dtype=F64).fill_diagonal_(1.0)
    mean = torch.linspace(1.0, -1.0, d, dtype=F64) + 0.5
    return Gaussian(mean, scales[:, None] * corr * scales[None, :])


def skewed_mixture(d: int) -> GaussianMixture:
    """Unequal weights at asymmetric, overlapping positions: a skewed, unimodal-ish target."""
    weights = torch.tensor([0.7, 0.3], dtype=F64)
    if d == 1:
        return GaussianMixture(
            weights, torch.tensor([[-0.6], [1.4]], dtype=F64), torch.tensor([0.5, 1.2], dtype=F64)
        )
    means = torch.tensor([[-0.6, 0.3], [1.4, -0.8]], dtype=F64)
    covs = torch.tensor([[[0.5, 0.2], [0.2, 0.4]], [[1.2, -0.3], [-0.3, 0.8]]], dtype=F64)
    return GaussianMixture(weights, means, covs)


def mixture_moments(m: GaussianMixture) -> tuple[Tensor, Tensor]:
    """Exact mean ``(D,)`` and covariance ``(D, D)`` of a Gaussian mixture."""
    w = m.log_weights.exp()
    mean = w @ m.means
    second = torch.einsum("k,kij->ij", w, m.covariances + m.means[:, :, None] * m.means[:, None])
    return mean, second - torch.outer(mean, mean)


def check_moments(
    samples: Tensor, mean: Tensor, cov: Tensor, min_ess: float, cov_bias: Tensor | float = 0.0
) -> None:
    """Means, variances and covariances of draws ``(T, C, D)`` within MCSE
    (plus ``cov_bias``, a known bound on the bias of the covariance, ``(D, D)``)."""
    assert_mean_within_mcse(samples, mean, min_ess=min_ess)
    d = samples.shape[-1]
    bias = torch.as_tensor(cov_bias, dtype=F64).expand(d, d)
    assert_variance_within_mcse(
        samples, mean, torch.diagonal(cov), min_ess=min_ess, bias_bound=torch.diagonal(bias)
    )
    if d > 1:
        i, j = torch.triu_indices(d, d, offset=1)
        r = samples - mean
        assert_mean_within_mcse(
            r[..., i] * r[..., j], cov[i, j], min_ess=min_ess, bias_bound=bias[i, j], what="cov"
        )


SAMPLERS = {
    "mala": lambda d: MALA(step_size=0.25 if d <= 2 else 0.15),
    "hmc": lambda d: HMC(step_size=0.5, n_leapfrog=4),
    "hmc_mass": lambda d: HMC(
        step_size=0.5, n_leapfrog=4, mass=torch.linspace(0.5, 1.5, d, dtype=F64)
    ),
    # The torch.compile fast path must sample the same distributions.
    "mala_compiled": lambda d: MALA(step_size=0.25 if d <= 2 else 0.15, compile=True),
    "hmc_compiled": lambda d: HMC(step_size=0.5, n_leapfrog=4, compile=True),
}
#: (burn-in, kept draws) per chain. HMC forgets its start within a few transitions;
#: MALA contracts by about 1 - h / lambda_max per step along the long axis
#: (lambda_max ~ 5.5 in 5-D), so it needs more of both.
N_STEPS = {
    ("mala", 2): (100, 200),
    ("mala", 5): (250, 400),
    ("mala_compiled", 2): (100, 200),
    ("mala_compiled", 5): (250, 400),
}


def sample_chains(
    sampler: object, energy: Energy, x0: Tensor, n_burn: int, n_keep: int, seed: int = 0
) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = run(sampler, energy, x0, n_burn + n_keep, burn_in=n_burn, thin=1, generator=g)
    assert out.samples is not None
    return out.samples, out.acceptance_rate


@pytest.mark.parametrize("method", list(SAMPLERS))
@pytest.mark.parametrize("d", [2, 5])
def test_exact_samplers_on_correlated_gaussian(method, d):
    target = correlated_gaussian(d)
    x0 = torch.zeros(1000, d, dtype=F64)  # away from the mean: burn-in must forget it
    n_burn, n_keep = N_STEPS.get((method, d), (50, 50))
    samples, acc = sample_chains(SAMPLERS[method](d), target, x0, n_burn, n_keep)
    # rejections must happen, or the Metropolis correction is not exercised
    assert 0.3 < float(acc.mean()) < 0.95, acc.mean()
    check_moments(samples, target.mean, target.covariance, min_ess=1000)


MIXTURE_SAMPLERS = {
    "mala": lambda: MALA(step_size=0.6),
    "hmc": lambda: HMC(step_size=1.0, n_leapfrog=3),
}


@pytest.mark.parametrize("method", list(MIXTURE_SAMPLERS))
@pytest.mark.parametrize("d", [1, 2])
def test_exact_samplers_on_skewed_mixture(method, d):
    target = skewed_mixture(d)
    mean, cov = mixture_moments(target)
    x0 = torch.full((1000, d), 2.0, dtype=F64)
    n_burn, n_keep = (100, 100) if method == "mala" else (50, 50)
    samples, acc = sample_chains(MIXTURE_SAMPLERS[method](), target, x0, n_burn, n_keep)
    assert 0.3 < float(acc.mean()) < 0.95, acc.mean()
    check_moments(samples, mean, cov, min_ess=1000)


@pytest.mark.parametrize(
    ("step", "noise", "compiled"),
    [(0.15, None, False), (0.1, "half", False), (0.15, None, True)],
    ids=["default-noise", "cold", "default-noise-compiled"],
)
def test_ula_matches_its_exact_stationary_covariance(step, noise, compiled):
    """For E = (x - m)^T P (x - m) / 2, ULA x' - m = A (x - m) + s z with A = I - h P
    has stationary mean m and covariance C = s^2 (I - A^2)^-1, which for the default
    s^2 = 2 h is (P - h P^2 / 2)^-1: larger than Sigma = P^-1 by O(h)."""
    target = correlated_gaussian(3)
    p = target.precision
    noise_scale = math.sqrt(step) if noise == "half" else math.sqrt(2 * step)
    a = torch.eye(3, dtype=F64) - step * p
    c = noise_scale**2 * torch.linalg.inv(torch.eye(3, dtype=F64) - a @ a)
    if noise is None:
        torch.testing.assert_close(c, torch.linalg.inv(p - step * p @ p / 2))
    sampler = Langevin(step_size=step, noise_scale=noise_scale, compile=compiled)
    samples, _ = sample_chains(sampler, target, torch.zeros(1000, 3, dtype=F64), 200, 200)
    assert not sampler._kernels.failed, "the compiled path fell back to eager"
    check_moments(samples, target.mean, c, min_ess=1000)


def test_ula_small_step_is_close_to_the_target():
    """Against the target itself, with the known O(h) ULA bias added to the tolerance.

    A step this small mixes slowly, so chains start from exact samples and the
    end states (independent across chains) are compared.
    """
    target = correlated_gaussian(2)
    h = 0.01
    p = target.precision
    bias = (torch.linalg.inv(p - h * p @ p / 2) - target.covariance).abs()
    g = torch.Generator().manual_seed(5)
    x0 = target.sample(4000, generator=g)
    end = run(Langevin(step_size=h), target, x0, 50, generator=g).state.x
    check_moments(end[:, None], target.mean, target.covariance, min_ess=1000, cov_bias=bias)


# ---------------------------------------------------------------- invariance


#: Large steps (acceptance about 0.4-0.8), per target.
INVARIANCE = {
    ("mala", "gaussian"): lambda: MALA(step_size=0.3),
    ("hmc", "gaussian"): lambda: HMC(step_size=0.7, n_leapfrog=4),
    ("mala", "mixture"): lambda: MALA(step_size=0.6),
    ("hmc", "mixture"): lambda: HMC(step_size=1.0, n_leapfrog=3),
}


def gaussian_cdf(target: Gaussian):
    sd = torch.diagonal(target.covariance).sqrt().numpy()
    mu = target.mean.numpy()
    return lambda x: norm.cdf((x - mu) / sd)


@pytest.mark.parametrize("method", ["mala", "hmc"])
@pytest.mark.parametrize("target_name", ["gaussian", "mixture"])
def test_exact_target_stays_invariant(method, target_name):
    """Start from exact samples, take a few large steps: the law must not move."""
    g = torch.Generator().manual_seed(3)
    n = 4000
    if target_name == "gaussian":
        target: Energy = correlated_gaussian(3)
        mean, cov = target.mean, target.covariance
        cdf = gaussian_cdf(target)
    else:
        target = skewed_mixture(2)
        mean, cov = mixture_moments(target)
        cdf = mixture_marginal_cdf(
            target.log_weights.exp(),
            target.means,
            torch.diagonal(target.covariances, dim1=-2, dim2=-1),
        )
    x0 = target.sample(n, generator=g)
    out = run(INVARIANCE[method, target_name](), target, x0, 5, generator=g)
    rate = float(out.acceptance_rate.mean())
    assert 0.2 < rate < 0.9, f"steps should be large enough to matter, acceptance {rate}"
    end = out.state.x
    assert_ks_marginals(end, cdf)
    # end states of independent chains: one draw each (KS is weak on spread)
    check_moments(end[:, None], mean, cov, min_ess=1000)


@pytest.mark.parametrize("method", ["mala", "hmc"])
def test_mode_proportions_of_a_separated_mixture(method):
    """Modes at -3 and +3 (weights 0.75 / 0.25): from exact samples the share of
    chains in each mode must stay at its exact value (binomial SE)."""
    target = GaussianMixture(
        torch.tensor([0.75, 0.25], dtype=F64),
        torch.tensor([[-3.0], [3.0]], dtype=F64),
        torch.tensor([0.36, 0.36], dtype=F64),
    )
    g = torch.Generator().manual_seed(4)
    n = 4000
    x0 = target.sample(n, generator=g)
    out = run(INVARIANCE[method, "mixture"](), target, x0, 20, generator=g)
    w = target.log_weights.exp()
    p_right = float((w.numpy() * norm.cdf(target.means[:, 0].numpy() / 0.6)).sum())
    right = int((out.state.x[:, 0] > 0).sum())
    assert_binomial_proportions([right, n - right], [p_right, 1 - p_right])
    cdf = mixture_marginal_cdf(w, target.means, torch.full((2, 1), 0.36, dtype=F64))
    assert_ks_marginals(out.state.x, cdf)

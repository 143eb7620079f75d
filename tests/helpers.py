"""Statistical assertions for tests: one helper per check.

Every tolerance comes from the sample (Monte Carlo standard errors, ESS,
binomial or KS null distributions), never from a bare ``atol``. On failure each
helper prints, per coordinate, the observed value, the expected one, the
standard error, the ESS (or sample size) and the z-score or p-value.

Shapes: MCMC draws are ``(n_draws, n_chains, *event_shape)`` (as in
``run(...).samples``); independent samples (end states of independent chains,
exact draws) are ``(n, *event_shape)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from ebmlab.diagnostics import effective_sample_size

__all__ = [
    "assert_binomial_proportions",
    "assert_ks_marginals",
    "assert_mean_within_mcse",
    "assert_tv_below",
    "assert_variance_within_mcse",
    "bonferroni_z",
    "mixture_marginal_cdf",
]


def bonferroni_z(z: float, n_tests: int) -> float:
    """Per-test two-sided threshold keeping the family-wise error of ``|Z| > z``.

    ``z = 4`` is a family error rate of about 6e-5; over ``n_tests`` tests each
    one gets ``alpha / n_tests``.
    """
    alpha = 2.0 * stats.norm.sf(z)
    return float(stats.norm.isf(alpha / (2.0 * max(n_tests, 1))))


def _flatten_draws(samples: Tensor) -> Tensor:
    if samples.dim() < 2:
        raise ValueError(f"draws must be (n_draws, n_chains, ...), got {tuple(samples.shape)}")
    return samples.detach().to(torch.float64).reshape(samples.shape[0], samples.shape[1], -1)


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    lines = ["  ".join(f"{h:>12}" for h in header)]
    for row in rows:
        cells = []
        for v in row:
            cells.append(f"{v:>12.5g}" if isinstance(v, float) else f"{v!s:>12}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def assert_mean_within_mcse(
    samples: Tensor,
    mu: Tensor | Sequence[float] | float,
    *,
    z: float = 4.0,
    bonferroni: bool = True,
    min_ess: float = 100.0,
    bias_bound: Tensor | Sequence[float] | float = 0.0,
    what: str = "mean",
) -> None:
    """Assert ``|mean - mu| < z * sd / sqrt(ESS) + bias_bound`` for every coordinate.

    Arguments:
        samples: MCMC draws ``(n_draws, n_chains, *event_shape)``; pass
            independent samples ``x`` of shape ``(n, ...)`` as ``x[:, None]``
            (one chain of ``n`` draws, ESS about ``n``).
        mu: Expected mean, broadcastable to the flattened event ``(D,)``.
        z: Family-wise z threshold.
        bonferroni: Split the error rate over the coordinates.
        min_ess: Fail first if any coordinate has fewer effective samples:
            the normal approximation and the ESS estimate need enough of them.
        bias_bound: A known bound on the sampler's bias (e.g. the O(step)
            bias of unadjusted Langevin), added to the tolerance; 0 for exact
            samplers.
        what: Name of the statistic in the message.
    """
    x = _flatten_draws(samples)
    d = x.shape[-1]
    expected = torch.as_tensor(mu, dtype=torch.float64).to(x.device).expand(d)
    ess = effective_sample_size(x)
    mean = x.mean((0, 1))
    sd = x.reshape(-1, d).std(0)
    se = sd / ess.sqrt()
    bias = torch.as_tensor(bias_bound, dtype=torch.float64).to(x.device).expand(d)
    score = ((mean - expected).abs() - bias).clamp_min(0.0) / se
    z_eff = bonferroni_z(z, d) if bonferroni else z
    rows = [
        (i, float(mean[i]), float(expected[i]), float(se[i]), float(ess[i]), float(score[i]))
        for i in range(d)
    ]
    header = ("coord", "observed", "expected", "SE", "ESS", "|z|")
    if bool((bias > 0).any()):
        rows = [(*row, float(bias[i])) for i, row in enumerate(rows)]
        header = (*header, "bias bound")
    report = _table(rows, header)
    low = ~(ess >= min_ess)
    assert not bool(low.any()), (
        f"{what}: ESS below the floor {min_ess} (n_draws={x.shape[0]}, "
        f"n_chains={x.shape[1]}):\n{report}"
    )
    bad = ~(score.abs() < z_eff)
    assert not bool(bad.any()), (
        f"{what}: |observed - expected| - bias_bound >= {z_eff:.3g} SE for coordinates "
        f"{bad.nonzero().flatten().tolist()}:\n{report}"
    )


def assert_variance_within_mcse(
    samples: Tensor,
    mu: Tensor | Sequence[float] | float,
    var: Tensor | Sequence[float] | float,
    *,
    z: float = 4.0,
    bonferroni: bool = True,
    min_ess: float = 100.0,
    bias_bound: Tensor | Sequence[float] | float = 0.0,
) -> None:
    """Assert the variances about a known mean: ``(x - mu)^2`` has mean ``var``.

    The mean check of :func:`assert_mean_within_mcse` on the squared
    deviations, with their own ESS and standard deviation.

    Arguments:
        samples: MCMC draws ``(n_draws, n_chains, *event_shape)``.
        mu: Known mean, broadcastable to the flattened event ``(D,)``.
        var: Expected variances, broadcastable to ``(D,)``.
        bias_bound: Known bound on the bias of the variances (see
            :func:`assert_mean_within_mcse`).
    """
    x = _flatten_draws(samples)
    m = torch.as_tensor(mu, dtype=torch.float64).to(x.device).expand(x.shape[-1])
    assert_mean_within_mcse(
        (x - m) ** 2,
        var,
        z=z,
        bonferroni=bonferroni,
        min_ess=min_ess,
        bias_bound=bias_bound,
        what="variance",
    )


def assert_ks_marginals(
    samples: Tensor,
    reference: Tensor | Callable[[np.ndarray], np.ndarray],
    *,
    p_min: float = 1e-3,
    bonferroni: bool = True,
) -> None:
    """Kolmogorov-Smirnov test of every marginal of independent samples.

    Arguments:
        samples: Independent samples ``(n, *event_shape)`` (e.g. end states of
            independent chains), flattened to ``(n, D)``.
        reference: Either independent reference samples ``(m, *event_shape)``
            (two-sample test) or a function mapping an array ``(n, D)`` to the
            marginal CDF values ``(n, D)``.
        p_min: Fail when a p-value is below this (divided by ``D`` with
            ``bonferroni``).
        bonferroni: Split ``p_min`` over the coordinates.
    """
    x = samples.detach().to(torch.float64).reshape(samples.shape[0], -1).cpu().numpy()
    n, d = x.shape
    if isinstance(reference, Tensor):
        ref = reference.detach().to(torch.float64).reshape(reference.shape[0], -1).cpu().numpy()
        if ref.shape[1] != d:
            raise ValueError(f"reference has {ref.shape[1]} coordinates, samples have {d}")
        results = [stats.ks_2samp(x[:, i], ref[:, i]) for i in range(d)]
        size = f"n={n}, m={ref.shape[0]}"
    else:
        order = np.sort(x, axis=0)
        u = np.asarray(reference(order), dtype=np.float64)
        if u.shape != order.shape:
            raise ValueError(f"cdf returned shape {u.shape}, expected {order.shape}")
        results = [stats.ks_1samp(u[:, i], stats.uniform.cdf) for i in range(d)]
        size = f"n={n}"
    threshold = p_min / d if bonferroni else p_min
    rows = [(i, float(r.statistic), float(r.pvalue)) for i, r in enumerate(results)]
    report = _table(rows, ("coord", "KS stat", "p-value"))
    bad = [i for i, r in enumerate(results) if not r.pvalue >= threshold]
    assert not bad, (
        f"KS: marginals {bad} differ from the reference (p < {threshold:.2g}, {size}):\n{report}"
    )


def assert_binomial_proportions(
    counts: Tensor | Sequence[int],
    probs: Tensor | Sequence[float],
    *,
    z: float = 4.0,
    bonferroni: bool = True,
) -> None:
    """Category counts of ``n`` independent draws match ``probs`` within binomial SEs.

    Each category is tested on its own, ``|k/n - p| < z sqrt(p (1 - p) / n)``.

    Arguments:
        counts: Counts per category ``(K,)`` of independent draws.
        probs: Exact probabilities ``(K,)``, summing to 1 (or to less when some
            categories are left out).
    """
    k = torch.as_tensor(counts, dtype=torch.float64).flatten()
    p = torch.as_tensor(probs, dtype=torch.float64).flatten()
    if k.shape != p.shape:
        raise ValueError(f"counts {tuple(k.shape)} and probs {tuple(p.shape)} differ in shape")
    n = float(k.sum())
    observed = k / n
    se = torch.sqrt(p * (1 - p) / n)
    score = (observed - p) / se.clamp_min(1e-300)
    z_eff = bonferroni_z(z, len(p)) if bonferroni else z
    rows = [
        (i, float(observed[i]), float(p[i]), float(se[i]), int(n), float(score[i]))
        for i in range(len(p))
    ]
    report = _table(rows, ("category", "observed", "expected", "SE", "n", "z"))
    bad = ~(score.abs() < z_eff)
    assert not bool(bad.any()), (
        f"proportions: categories {bad.nonzero().flatten().tolist()} off by >= "
        f"{z_eff:.3g} SE:\n{report}"
    )


def assert_tv_below(
    counts: Tensor | Sequence[int], probs: Tensor | Sequence[float], *, delta: float = 1e-4
) -> None:
    """Total variation between a histogram of ``n`` independent draws and ``probs``.

    The bound is ``E[TV] + sqrt(log(1 / delta) / (2 n))`` with
    ``E[TV] <= 1/2 sum_k sqrt(p_k (1 - p_k) / n)`` (at most ``sqrt(K / n) / 2``);
    by McDiarmid's inequality a correct sampler exceeds it with probability
    below ``delta``.

    Arguments:
        counts: Counts per state ``(K,)`` (every state, zeros included).
        probs: Exact probabilities ``(K,)`` summing to 1.
        delta: Allowed false-alarm probability.
    """
    k = torch.as_tensor(counts, dtype=torch.float64).flatten()
    p = torch.as_tensor(probs, dtype=torch.float64).flatten()
    if k.shape != p.shape:
        raise ValueError(f"counts {tuple(k.shape)} and probs {tuple(p.shape)} differ in shape")
    n = float(k.sum())
    tv = 0.5 * float((k / n - p).abs().sum())
    expected_tv = 0.5 * float(torch.sqrt(p * (1 - p) / n).sum())
    bound = expected_tv + math.sqrt(math.log(1.0 / delta) / (2.0 * n))
    assert tv < bound, (
        f"total variation {tv:.4g} >= bound {bound:.4g} (E[TV] <= {expected_tv:.4g}, "
        f"n={int(n)}, K={len(p)}, delta={delta})"
    )


def mixture_marginal_cdf(
    weights: Tensor, means: Tensor, variances: Tensor
) -> Callable[[np.ndarray], np.ndarray]:
    """Marginal CDFs of a Gaussian mixture, for :func:`assert_ks_marginals`.

    Arguments:
        weights: ``(K,)``, normalized here.
        means: ``(K, D)``.
        variances: Marginal variances ``(K, D)`` (diagonals of the covariances).

    Returns:
        A function mapping ``(n, D)`` to the marginal CDF values ``(n, D)``.
    """
    w = (weights / weights.sum()).detach().cpu().double().numpy()
    mu = means.detach().cpu().double().numpy()
    sd = variances.detach().cpu().double().sqrt().numpy()

    def cdf(x: np.ndarray) -> np.ndarray:
        comps = stats.norm.cdf((x[:, None, :] - mu[None]) / sd[None])  # (n, K, D)
        return np.einsum("k,nkd->nd", w, comps)

    return cdf

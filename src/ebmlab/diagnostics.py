"""MCMC diagnostics: effective sample size, autocorrelation time, split-R-hat,
acceptance summaries.

Every function takes draws laid out as ``(n_draws, n_chains, ...)``: time first,
then the chain dimension, then any number of coordinates, which are diagnosed
independently (the result has shape ``(...)``). This is the layout of
``run(...).samples``.

References:
    Geyer, C. J. (1992). Practical Markov chain Monte Carlo. Statistical
    Science 7(4), 473-483. https://doi.org/10.1214/ss/1177011137

    Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. & Bürkner, P.-C. (2021).
    Rank-normalization, folding, and localization: an improved R-hat for
    assessing convergence of MCMC. Bayesian Analysis 16(2), 667-718.
    https://arxiv.org/abs/1903.08008
"""

from __future__ import annotations

__all__ = [
    "acceptance_summary",
    "autocorrelation",
    "effective_sample_size",
    "integrated_autocorrelation_time",
    "rhat",
]

import math

import torch
from torch import Tensor

_MIN_DRAWS = 4


def _check_chains(chains: Tensor, name: str = "chains", min_draws: int = _MIN_DRAWS) -> Tensor:
    """Validate ``(n_draws, n_chains, ...)`` draws and return them in float64."""
    if not isinstance(chains, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(chains).__name__}")
    if chains.dim() < 2:
        raise ValueError(
            f"{name} must have shape (n_draws, n_chains, ...), got {tuple(chains.shape)}"
        )
    if chains.shape[0] < min_draws:
        raise ValueError(f"{name} needs at least {min_draws} draws, got {chains.shape[0]}")
    if chains.shape[1] < 1:
        raise ValueError(f"{name} needs at least one chain, got {tuple(chains.shape)}")
    return chains.detach().to(torch.float64)


def _autocovariance(x: Tensor) -> Tensor:
    """Biased (divided by ``n``) autocovariance along dim 0 via FFT, shaped like ``x``."""
    n = x.shape[0]
    centered = x - x.mean(0, keepdim=True)
    n_fft = 1 << (2 * n - 1).bit_length()  # zero padding: no circular wrap-around
    f = torch.fft.rfft(centered, n=n_fft, dim=0)
    acov = torch.fft.irfft(f * f.conj(), n=n_fft, dim=0)[:n]
    return acov / n


def autocorrelation(chains: Tensor) -> Tensor:
    """Autocorrelation of the pooled chains at every lag (Vehtari et al. 2021, eq. 10).

    Within-chain autocovariances (computed by FFT) are averaged over chains and
    normalized by the pooled variance estimate ``var_plus``, which includes the
    between-chain variance; chains that disagree therefore show slowly
    decaying autocorrelation.

    Arguments:
        chains: Draws, shape ``(n_draws, n_chains, ...)``.

    Returns:
        ``rho[t, ...]`` for lags ``t = 0 .. n_draws - 1``, shape
        ``(n_draws, ...)``, float64, with ``rho[0] = 1``.

    Example:
        >>> x = torch.randn(100, 4, 3, generator=torch.Generator().manual_seed(0))
        >>> tuple(autocorrelation(x).shape)
        (100, 3)
    """
    x = _check_chains(chains)
    n, m = x.shape[0], x.shape[1]
    acov = _autocovariance(x)  # (n, m, ...)
    within = acov[0].mean(0) * n / (n - 1)  # W: mean within-chain variance
    var_plus = within * (n - 1) / n
    if m > 1:
        var_plus = var_plus + x.mean(0).var(0)  # + B / n
    rho = 1.0 - (within - acov.mean(1)) / var_plus
    rho[0] = torch.where(torch.isnan(rho[0]), rho[0], torch.ones_like(rho[0]))
    return rho


def integrated_autocorrelation_time(chains: Tensor) -> Tensor:
    """Integrated autocorrelation time ``tau = 1 + 2 sum_{t>=1} rho_t`` per coordinate.

    The infinite sum is truncated by Geyer's initial monotone sequence
    estimator: autocorrelations are summed in pairs
    ``P_k = rho_{2k} + rho_{2k+1}``, up to the first non-positive pair, and the
    pairs are made non-increasing, so ``tau = -1 + 2 sum_k P_k``. As in Stan,
    ``tau`` is bounded below by ``1 / log10(n_draws * n_chains)``.

    Arguments:
        chains: Draws, shape ``(n_draws, n_chains, ...)``, at least 4 draws.

    Returns:
        ``tau``, shape ``(...)``, float64: 1 for independent draws, larger for
        correlated ones, below 1 for antithetic ones. NaN for constant chains.

    Example:
        >>> x = torch.randn(200, 4, 2, generator=torch.Generator().manual_seed(0))
        >>> tuple(integrated_autocorrelation_time(x).shape)
        (2,)
    """
    rho = autocorrelation(chains)
    n_total = chains.shape[0] * chains.shape[1]
    n_pairs = rho.shape[0] // 2
    pairs = rho[: 2 * n_pairs : 2] + rho[1 : 2 * n_pairs : 2]  # (n_pairs, ...)
    # Initial positive sequence: keep pairs before the first non-positive one.
    is_kept = torch.cumprod((pairs > 0).to(pairs.dtype), dim=0)
    # Initial monotone sequence: running minimum of the kept pairs.
    monotone = torch.cummin(pairs, dim=0).values
    tau = -1.0 + 2.0 * (monotone * is_kept).sum(0)
    tau = tau.clamp(min=1.0 / math.log10(max(n_total, 2)))
    # Constant coordinates: no information.
    constant = ~(rho[0] == rho[0])  # rho is NaN when var_plus is 0
    return torch.where(constant, torch.full_like(tau, float("nan")), tau)


def effective_sample_size(chains: Tensor) -> Tensor:
    """Effective sample size of the mean, per coordinate, ``n_draws * n_chains / tau``.

    ``tau`` is the integrated autocorrelation time of
    :func:`integrated_autocorrelation_time` (Geyer's initial monotone sequence
    on FFT autocorrelations, chains combined as in Stan / Vehtari et al. 2021,
    without rank normalization). The Monte Carlo standard error of a mean
    estimate is ``sd / sqrt(ess)``.

    Arguments:
        chains: Draws, shape ``(n_draws, n_chains, ...)``, at least 4 draws.
            Use ``(n_draws, 1, ...)`` for a single chain.

    Returns:
        ESS, shape ``(...)``, float64. About ``n_draws * n_chains`` for
        independent draws; NaN for constant chains.

    Example:
        >>> x = torch.randn(500, 8, 3, generator=torch.Generator().manual_seed(0))
        >>> tuple(effective_sample_size(x).shape)
        (3,)
    """
    tau = integrated_autocorrelation_time(chains)
    return chains.shape[0] * chains.shape[1] / tau


def rhat(chains: Tensor) -> Tensor:
    """Split-R-hat (potential scale reduction) per coordinate.

    Each chain is split into halves (the middle draw is dropped for an odd
    count), then with ``n`` draws per half-chain, ``W`` the mean within-chain
    variance and ``B / n`` the variance of the half-chain means,
    ``R = sqrt(((n - 1) / n W + B / n) / W)``. Values close to 1 (below about
    1.01) suggest the chains agree; a chain that drifts or sticks in one mode
    raises it.

    Arguments:
        chains: Draws, shape ``(n_draws, n_chains, ...)``, at least 4 draws.

    Returns:
        R-hat, shape ``(...)``, float64.

    Example:
        >>> x = torch.randn(100, 4, 2, generator=torch.Generator().manual_seed(0))
        >>> tuple(rhat(x).shape)
        (2,)
    """
    x = _check_chains(chains)
    half = x.shape[0] // 2
    split = torch.cat([x[:half], x[x.shape[0] - half :]], dim=1)  # (half, 2 m, ...)
    within = split.var(0).mean(0)
    between_over_n = split.mean(0).var(0)
    var_plus = within * (half - 1) / half + between_over_n
    return torch.sqrt(var_plus / within)


def acceptance_summary(rates: Tensor, *, stuck_below: float = 0.01) -> dict[str, float]:
    """Summary statistics of Metropolis acceptance rates across chains.

    Arguments:
        rates: Acceptance rates in ``[0, 1]``: per chain, shape ``(n_chains,)``
            (e.g. ``run(...).acceptance_rate``), or per step and chain, shape
            ``(n_steps, n_chains)``, which is first averaged over steps.
        stuck_below: Chains whose mean rate is below this count as stuck.

    Returns:
        Python floats: ``mean``, ``std``, ``min``, ``q05``, ``median``, ``q95``,
        ``max`` over chains, ``fraction_stuck`` (share of chains below
        ``stuck_below``) and ``n_chains`` (an int).

    Raises:
        ValueError: If ``rates`` is empty, has more than 2 dimensions, or holds
            values outside ``[0, 1]`` (NaN included).

    Example:
        >>> s = acceptance_summary(torch.tensor([0.5, 0.6, 0.0]))
        >>> sorted(s)[:3], s["n_chains"]
        (['fraction_stuck', 'max', 'mean'], 3)
    """
    if not isinstance(rates, Tensor):
        raise TypeError(f"rates must be a torch.Tensor, got {type(rates).__name__}")
    if rates.dim() not in (1, 2) or rates.numel() == 0:
        raise ValueError(
            f"rates must have shape (n_chains,) or (n_steps, n_chains), got {tuple(rates.shape)}"
        )
    r = rates.detach().to(torch.float64)
    if not bool(((r >= 0) & (r <= 1)).all()):
        bad = r[~((r >= 0) & (r <= 1))]
        raise ValueError(f"rates must lie in [0, 1], got values such as {bad[:3].tolist()}")
    if r.dim() == 2:
        r = r.mean(0)
    q = torch.quantile(r, torch.tensor([0.05, 0.5, 0.95], dtype=r.dtype, device=r.device))
    return {
        "mean": float(r.mean()),
        "std": float(r.std()) if r.numel() > 1 else 0.0,
        "min": float(r.min()),
        "q05": float(q[0]),
        "median": float(q[1]),
        "q95": float(q[2]),
        "max": float(r.max()),
        "fraction_stuck": float((r < stuck_below).to(r.dtype).mean()),
        "n_chains": r.numel(),
    }

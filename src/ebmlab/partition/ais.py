"""Annealed importance sampling (Neal 2001), forward and reverse.

AIS moves chains from a tractable base ``p0 = exp(-E0) / Z0`` to the target
``exp(-E) / Z`` along the geometric path

.. math:: E_\\beta(x) = (1 - \\beta) E_0(x) + \\beta E(x), \\qquad
          0 = \\beta_0 < \\beta_1 < \\dots < \\beta_T = 1.

Each chain starts from an exact base sample; at every temperature its log
weight grows by ``-(beta_t - beta_{t-1}) (E(x) - E0(x))`` and then an MCMC
transition that leaves ``exp(-E_beta_t)`` invariant moves it (MALA, HMC or
Langevin from :mod:`ebmlab.samplers` for continuous variables, single-site
Gibbs for discrete ones). The mean weight is an unbiased estimate of
``Z / Z0``, so ``log Z_hat = log Z0 + log mean(w)`` is a stochastic *lower*
bound (``E[log Z_hat] <= log Z``). Run from exact target samples with the
temperatures reversed, the same recursion estimates ``Z0 / Z`` without bias:
reverse AIS gives a stochastic *upper* bound (Grosse et al. 2015), and the pair
brackets ``log Z`` (see :mod:`ebmlab.partition.bdmc`).

Schedules: ``"linear"``, ``"sigmoid"`` (dense at both ends), or ``"adaptive"``
(the default): a short pilot AIS run on a mixed grid measures the spread of
``E - E0`` along the path and the main temperatures are placed at equal
increments of ``integral sd_beta(E - E0) dbeta`` (the thermodynamic length),
which minimizes the variance of the log weights for well-mixed chains. The
pilot also tunes the transition's step size at every temperature; the main
run then uses those step sizes unchanged, so its weights stay exactly
unbiased. A fixed schedule (``"linear"``, ``"sigmoid"``, a tensor) with
``adapt_step_size`` gets a pilot of its own, along a thinned copy of the
schedule, that tunes the step sizes the same way: the main run never adapts
them from its own chains' history, which would bias the weights.

References:
    Neal, R. M. (2001). Annealed importance sampling. Statistics and Computing
    11(2), 125-139. https://arxiv.org/abs/physics/9803008

    Grosse, R. B., Ghahramani, Z. & Adams, R. P. (2015). Sandwiching the
    marginal likelihood using bidirectional Monte Carlo.
    https://arxiv.org/abs/1511.02543

    Wu, Y., Burda, Y., Salakhutdinov, R. & Grosse, R. (2017). On the
    quantitative analysis of decoder-based generative models (sigmoid
    schedule, adaptive HMC in AIS). ICLR. https://arxiv.org/abs/1611.04273
"""

from __future__ import annotations

__all__ = ["SCHEDULES", "ais_log_z", "annealing_schedule", "reverse_ais_log_z"]

import time
from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from ..samplers import Sampler
from ._engine import _forward_estimate, _plan_from, _reverse_estimate
from .estimate import Estimate
from .schedules import SCHEDULES, annealing_schedule


def ais_log_z(
    energy: EnergyFn,
    *,
    event_shape: tuple[int, ...] | int | None = None,
    domain: Any = None,
    base: Any = None,
    data: Tensor | None = None,
    base_inflation: float | None = None,
    n_chains: int = 256,
    n_temperatures: int = 1000,
    schedule: str | Tensor = "adaptive",
    sampler: str | Sampler = "auto",
    n_transitions: int = 1,
    n_leapfrog: int = 2,
    step_size: float | None = None,
    target_acceptance: float | None = None,
    adapt_step_size: bool = True,
    pilot_chains: int | None = None,
    pilot_temperatures: int | None = None,
    z: float = 3.0,
    min_ess: float | None = None,
    return_samples: bool = False,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Estimate:
    """Estimate ``log Z`` by annealed importance sampling (see the module docstring).

    Arguments:
        energy: Callable ``(N, *event_shape) -> (N,)``; low energy = high
            probability. Parameters are never given gradients.
        event_shape: Shape of one configuration (default ``energy.event_shape``).
        domain: ``"continuous"`` (default) or a discrete domain
            (``"binary"``, ``"spin"``, ``K``, values, ``"onehot"``); default
            ``energy.domain`` when it exists.
        base: The tractable start: an energy with exact ``log_z`` and
            ``sample(n, generator=)`` (e.g. ``Gaussian``), or ``"data"`` (a
            Gaussian fitted to ``data``), ``"pilot"`` (a broad diagonal
            Gaussian from a short MCMC run on the target: needs only the event
            shape), ``"uniform"`` (discrete). Default: ``"uniform"`` for
            discrete domains, ``"data"`` when data is given, else ``"pilot"``.
        data: Samples ``(N, *event_shape)`` to fit the Gaussian base to.
        base_inflation: Widen a fitted base's standard deviations by this
            factor (default 1.5 for ``"data"``, 2 for ``"pilot"``).
        n_chains: Independent AIS chains (the weights' sample size).
        n_temperatures: Number ``T`` of annealing steps.
        schedule: ``"adaptive"`` (pilot run, thermodynamic length),
            ``"linear"``, ``"sigmoid"``, or an increasing tensor from 0 to 1.
        sampler: ``"auto"`` (HMC for continuous, Gibbs for discrete),
            ``"hmc"``, ``"mala"``, ``"langevin"`` (unadjusted: biased),
            ``"gibbs"``, or a sampler object (its ``step_size`` is adapted on a
            copy).
        n_transitions: MCMC steps (Gibbs sweeps) per temperature.
        n_leapfrog: Mean leapfrog steps of HMC: each temperature draws its number
            uniformly from ``1 .. 2 n_leapfrog - 1`` (a sampler object passed as
            ``sampler`` keeps its own fixed number).
        step_size: Initial step size (default from the base's scale).
        target_acceptance: Acceptance rate the step size aims at (default 0.75
            for HMC, 0.6 for MALA).
        adapt_step_size: Tune the step size per temperature.
        pilot_chains: Chains of the pilot run (the adaptive schedule's, or the
            step-size pilot of a fixed schedule; default ``min(n_chains, 64)``).
        pilot_temperatures: Its temperatures (default ``T / 4`` within 50..1000).
        z: Half-width of ``[lower, upper]`` in standard errors.
        min_ess: Warn when the ESS of the final weights is below this
            (default ``max(min(30, n/2), 0.05 n)``).
        return_samples: Keep the chains' final states in
            ``details["samples"]`` (with ``details["log_weights"]``).
        generator: Random generator (``None``: torch's global one).
        dtype: Working dtype (default: the energy's parameters').
        device: Working device (default: the energy's parameters').

    Returns:
        An :class:`~ebmlab.partition.Estimate` with ``method="ais"``,
        ``value = log Z0 + log mean(w)``, the delta-method ``stderr``,
        ``[lower, upper] = value -+ z stderr`` (noise only: the estimate is
        biased low when annealing is too fast; use BDMC for a bracket),
        ``ess`` and ``n_samples = n_chains``. ``details`` holds the schedule,
        step sizes, acceptance rates and the log weights.

    Warns:
        RuntimeWarning: When the ESS is below ``min_ess``.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> g = torch.Generator().manual_seed(0)
        >>> mean, cov = torch.ones(2, dtype=torch.float64), 2 * torch.eye(2, dtype=torch.float64)
        >>> target = Gaussian(mean, cov)
        >>> data = target.sample(500, generator=g)  # optional (else a pilot run places the base)
        >>> est = ais_log_z(target, data=data, n_chains=32, n_temperatures=30, generator=g)
        >>> est.method, est.n_samples, est.lower < est.value < est.upper
        ('ais', 32, True)
    """
    t0 = time.perf_counter()
    plan = _plan_from(energy, locals())
    return _forward_estimate(
        plan, n_chains, generator, z, min_ess, return_samples, t0, stacklevel_what="AIS"
    )


def reverse_ais_log_z(
    energy: EnergyFn,
    samples: Tensor,
    *,
    domain: Any = None,
    base: Any = None,
    data: Tensor | None = None,
    base_inflation: float | None = None,
    n_temperatures: int = 1000,
    schedule: str | Tensor = "adaptive",
    sampler: str | Sampler = "auto",
    n_transitions: int = 1,
    n_leapfrog: int = 2,
    step_size: float | None = None,
    target_acceptance: float | None = None,
    adapt_step_size: bool = True,
    z: float = 3.0,
    min_ess: float | None = None,
    generator: torch.Generator | None = None,
) -> Estimate:
    """Reverse AIS: a stochastic *upper* bound on ``log Z`` from target samples.

    Chains start at ``samples`` (exact draws from ``exp(-E) / Z`` make the
    bound hold in expectation; long-run MCMC draws make it approximate) and
    anneal from ``beta = 1`` to the base at ``beta = 0``. The mean reverse
    weight estimates ``Z0 / Z`` without bias, so
    ``log Z0 - log mean(w)`` over-estimates ``log Z`` on average. The schedule
    and step sizes are set up as in :func:`ais_log_z` (the adaptive
    schedule's pilot runs forward from the base). To bracket ``log Z`` use
    :func:`~ebmlab.partition.bdmc_log_z`, which shares one plan between the
    two directions.

    Arguments:
        energy: Callable ``(N, *event_shape) -> (N,)``.
        samples: Target samples, shape ``(n_chains, *event_shape)``.
        (others): As in :func:`ais_log_z`.

    Returns:
        An :class:`~ebmlab.partition.Estimate` with ``method="reverse-ais"``.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> g = torch.Generator().manual_seed(0)
        >>> target = Gaussian.standard(3, dtype=torch.float64)
        >>> x = target.sample(32, generator=g)
        >>> est = reverse_ais_log_z(target, x, data=x, n_temperatures=30, generator=g)
        >>> est.method, est.n_samples
        ('reverse-ais', 32)
    """
    t0 = time.perf_counter()
    plan = _plan_from(
        energy,
        locals(),
        event_shape=tuple(samples.shape[1:]),
        n_chains=samples.shape[0],
        dtype=samples.dtype if samples.is_floating_point() else None,
        device=samples.device,
    )
    return _reverse_estimate(plan, samples, None, generator, z, min_ess, t0)

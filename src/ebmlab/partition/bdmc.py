"""Bidirectional Monte Carlo: forward and reverse AIS bracket log Z.

Forward AIS from the base gives a stochastic lower bound on ``log Z``; reverse
AIS from samples of the target gives a stochastic upper bound (Grosse et al.
2015). Both runs here share one plan: the same base, temperatures and
per-temperature step sizes, the reverse run visiting them backwards. The
reported interval widens each bound by ``z`` of its own standard errors,

.. math:: [\\hat L - z\\,\\mathrm{se}_L,\\; \\hat U + z\\,\\mathrm{se}_U],

so it holds the true value unless one run is unlucky beyond ``z`` standard
errors or the reverse run's samples are far from the target. The bracket is
*tight* when its width is below ``tolerance``: then both directions agree and
the estimate can be trusted; a wide bracket says that more temperatures or
better transitions are needed, whichever estimate looks better.

Target samples come from, in order: the ``samples`` argument; the energy's
own ``sample(n, generator=)`` when the energy declares it exact with
``is_sample_exact = True`` (closed-form targets such as
:class:`~ebmlab.energies.Gaussian`; a finite Gibbs chain such as
``RBM.sample`` is not exact and is not used); else the forward run's final
states, resampled by their weights and moved by ``n_posterior_steps`` more
transitions at ``beta = 1``. The last kind is approximate, so the upper bound
is approximate too (and so is ``is_tight``): ``details["samples_exact"]`` is
then ``False``.

References:
    Grosse, R. B., Ghahramani, Z. & Adams, R. P. (2015). Sandwiching the
    marginal likelihood using bidirectional Monte Carlo.
    https://arxiv.org/abs/1511.02543
"""

from __future__ import annotations

__all__ = ["bdmc_log_z"]

import math
import time
from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from ..samplers import Sampler
from ._engine import _forward_estimate, _plan_from, _reverse_estimate
from .estimate import Estimate


def _posterior_samples(
    plan: Any,
    forward: Estimate,
    n: int,
    n_steps: int,
    generator: torch.Generator | None,
) -> Tensor:
    """Forward end states resampled by weight, then ``n_steps`` transitions at beta = 1."""
    x_end: Tensor = forward.details["samples"]
    if plan.amap is not None:
        x_end = plan.amap.to_u(x_end)
    log_w: Tensor = forward.details["log_weights"]
    p = torch.softmax(log_w.double().nan_to_num(-math.inf), 0)
    idx = torch.multinomial(p, n, replacement=True, generator=generator)
    x = x_end[idx.to(x_end.device)]
    path, sampler = plan.path, plan.sampler
    path.beta = 1.0
    steps = forward.details["step_sizes"].tolist()
    if steps and hasattr(sampler, "step_size"):
        sampler.step_size = steps[-1]
    if n_steps > 0:
        state = sampler.init(x, path)
        for _ in range(n_steps):
            state, _ = sampler.step(state, path, generator=generator)
        x = state.x
    return plan.amap.to_x(x) if plan.amap is not None else x


def bdmc_log_z(
    energy: EnergyFn,
    samples: Tensor | None = None,
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
    n_posterior_steps: int = 200,
    tolerance: float = 0.2,
    z: float = 3.0,
    min_ess: float | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Estimate:
    """Bracket ``log Z`` between forward and reverse AIS (see the module docstring).

    Arguments:
        energy: Callable ``(N, *event_shape) -> (N,)``; low energy = probable.
        samples: Target samples ``(M, *event_shape)`` for the reverse run
            (exact ones make the upper bound hold in expectation). Default:
            the energy's ``sample`` if the energy sets ``is_sample_exact``, else
            resampled forward end states after ``n_posterior_steps`` more
            transitions (approximate: ``details["samples_exact"]`` is False).
        n_posterior_steps: Transitions at ``beta = 1`` for those resampled states.
        tolerance: The bracket is tight when ``upper - lower <= tolerance`` (nats).
        z: Each bound is widened by ``z`` of its standard errors.
        (others): As in :func:`~ebmlab.partition.ais_log_z`.

    Returns:
        An :class:`~ebmlab.partition.Estimate` with ``method="bdmc"``:
        ``lower``/``upper`` the widened forward/reverse bounds, ``value`` their
        midpoint, ``stderr`` the half gap between the two point estimates
        combined with their noise, ``is_tight``, and the two runs' own
        estimates under ``details["forward"]`` and ``details["reverse"]``.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> g = torch.Generator().manual_seed(0)
        >>> target = Gaussian.standard(2, dtype=torch.float64)
        >>> data = target.sample(200, generator=g)
        >>> est = bdmc_log_z(target, data=data, n_chains=64, n_temperatures=100, generator=g)
        >>> est.method, est.lower <= float(target.log_z) <= est.upper
        ('bdmc', True)
    """
    t0 = time.perf_counter()
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance}")
    if n_posterior_steps < 0:
        raise ValueError(f"n_posterior_steps must be >= 0, got {n_posterior_steps}")
    plan = _plan_from(energy, locals())  # no pilot_* options: the adaptive pilot's defaults
    if samples is not None and (
        tuple(samples.shape[1:]) != plan.event_shape or samples.shape[0] < 2
    ):
        raise ValueError(
            f"samples must have shape (n >= 2, {', '.join(map(str, plan.event_shape))}), "
            f"got {tuple(samples.shape)}"
        )
    # Only a sampler the energy declares exact makes the upper bound hold.
    is_exact = bool(getattr(energy, "is_sample_exact", False))
    exact_sampler = getattr(energy, "sample", None) if is_exact else None
    need_end_states = samples is None and not callable(exact_sampler)
    t_fwd = time.perf_counter()
    forward = _forward_estimate(
        plan,
        n_chains,
        generator,
        z,
        min_ess,
        need_end_states,
        t_fwd,
        stacklevel_what="BDMC forward AIS",
        final_transition=need_end_states,
    )
    if samples is not None:
        source = "given"
        x = samples
    elif callable(exact_sampler):
        source = "exact"
        x = exact_sampler(n_chains, generator=generator)
    else:
        source = f"forward AIS end states, resampled, + {n_posterior_steps} transitions"
        x = _posterior_samples(plan, forward, n_chains, n_posterior_steps, generator)
    # The reverse run visits the forward run's temperatures and step sizes backwards.
    used = forward.details["step_sizes"].tolist()
    per_beta = None
    if plan.step_sizes is None and used:
        n_b = len(plan.betas)
        per_beta = [used[0], *used[: n_b - 2]]
        per_beta += [per_beta[-1]] * (n_b - len(per_beta))
    reverse = _reverse_estimate(plan, x, per_beta, generator, z, min_ess, time.perf_counter())
    lower, upper = forward.lower, reverse.upper
    value = 0.5 * (forward.value + reverse.value)
    half_gap = 0.5 * (reverse.value - forward.value)
    stderr = math.sqrt(half_gap**2 + 0.25 * (forward.stderr**2 + reverse.stderr**2))
    forward.details.pop("samples", None)
    details: dict[str, Any] = {
        "forward": forward,
        "reverse": reverse,
        "samples": source,
        # True: exact target samples; False: approximate ones (the upper bound and
        # is_tight are approximate too); None: given by the caller.
        "samples_exact": None if samples is not None else callable(exact_sampler),
        "tolerance": tolerance,
        "gap": reverse.value - forward.value,
        "z": z,
    }
    return Estimate(
        value,
        stderr,
        lower,
        upper,
        "bdmc",
        time.perf_counter() - t0,
        ess=min(forward.ess or 0.0, reverse.ess or 0.0),
        n_samples=n_chains,
        is_tight=bool(upper - lower <= tolerance),
        details=details,
    )

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
unbiased. With a fixed schedule the step size is adapted on the fly from the
chains' mean acceptance at the previous temperature instead.

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

import copy
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from ..samplers import HMC, MALA, Langevin, Sampler
from ._adapt import StepSizeAdapter
from ._gibbs import Gibbs
from .bases import UniformDiscrete, fit_gaussian, pilot_gaussian
from .domain import Domain, domain_of
from .estimate import Estimate, weight_stats

#: Named annealing schedules.
SCHEDULES = ("adaptive", "linear", "sigmoid")

_TARGET_ACCEPTANCE = {"mala": 0.6, "hmc": 0.75}


def annealing_schedule(name: str, n_temperatures: int, *, sharpness: float = 4.0) -> Tensor:
    """Inverse temperatures ``0 = beta_0 < ... < beta_T = 1`` (float64, ``(T + 1,)``).

    Arguments:
        name: ``"linear"`` or ``"sigmoid"``: ``beta_t`` proportional to
            ``sigmoid(sharpness (2 t / T - 1))``, rescaled to run from 0 to 1
            (Wu et al. 2017): small steps at both ends.
        n_temperatures: ``T >= 1``.
        sharpness: Steepness of the sigmoid.

    Example:
        >>> annealing_schedule("linear", 4).tolist()
        [0.0, 0.25, 0.5, 0.75, 1.0]
        >>> b = annealing_schedule("sigmoid", 100)
        >>> float(b[1] - b[0]) < 0.01 < float(b[51] - b[50])
        True
    """
    if n_temperatures < 1:
        raise ValueError(f"n_temperatures must be >= 1, got {n_temperatures}")
    t = torch.linspace(0.0, 1.0, n_temperatures + 1, dtype=torch.float64)
    if name == "linear":
        return t
    if name == "sigmoid":
        s = torch.sigmoid(sharpness * (2.0 * t - 1.0))
        b = (s - s[0]) / (s[-1] - s[0])
        b[0], b[-1] = 0.0, 1.0
        return b
    raise ValueError(f"schedule must be one of {list(SCHEDULES)} or a tensor, got {name!r}")


def _check_betas(betas: Tensor) -> Tensor:
    b = torch.as_tensor(betas, dtype=torch.float64).flatten().cpu()
    if b.numel() < 2 or float(b[0]) != 0.0 or float(b[-1]) != 1.0:
        raise ValueError("an explicit schedule must start at 0.0 and end at 1.0")
    if bool((b.diff() <= 0).any()):
        raise ValueError("an explicit schedule must be strictly increasing")
    return b


class _Path:
    """``E_beta = (1 - beta) E0 + beta E``; remembers ``E - E0`` of its last call."""

    def __init__(self, energy: EnergyFn, base: EnergyFn) -> None:
        self.energy = energy
        self.base = base
        self.beta = 0.0
        self.delta: Tensor | None = None
        self.n_calls = 0

    def __call__(self, x: Tensor) -> Tensor:
        e = self.energy(x)
        e0 = self.base(x).to(e.dtype)
        self.delta = (e - e0).detach()
        self.n_calls += 1
        b = self.beta
        if b == 1.0:
            return e
        if b == 0.0:
            return e0
        return (1.0 - b) * e0 + b * e

    def delta_at(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return (self.energy(x) - self.base(x)).detach()


@dataclass
class _Plan:
    """Everything a forward or reverse run needs, resolved once."""

    base: Any
    log_z_base: float
    path: _Path
    sampler: Any
    sampler_name: str
    betas: list[float]
    step_sizes: list[float] | None  # per beta (index t); None: adapt on the fly
    adapter: StepSizeAdapter | None
    n_transitions: int
    event_shape: tuple[int, ...]
    domain: Domain
    dtype: torch.dtype
    device: torch.device
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _RunOut:
    x: Tensor
    log_w: Tensor
    step_sizes: list[float]
    acceptance: list[float]
    delta_sd: list[float]


def _anneal(
    plan: _Plan,
    x: Tensor,
    betas: Sequence[float],
    step_sizes: Sequence[float] | None,
    *,
    generator: torch.Generator | None,
    adapter: StepSizeAdapter | None,
    record_sd: bool = False,
    final_transition: bool = False,
) -> _RunOut:
    """Run chains ``x`` along ``betas`` (either direction); log weights in float64.

    At each move ``beta -> beta'`` the log weight grows by
    ``-(beta' - beta) (E(x) - E0(x))``; then ``n_transitions`` MCMC steps
    targeting ``E_beta'`` follow (skipped after the last beta unless
    ``final_transition``). ``step_sizes[t]`` is used at ``betas[t]``.
    """
    path, sampler = plan.path, plan.sampler
    log_w = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    used: list[float] = []
    acc_hist: list[Tensor] = []
    sd_hist: list[Tensor] = []
    track = bool(getattr(sampler, "has_acceptance", False))
    sync_every = 1 if x.device.type == "cpu" else 10
    pending: list[Tensor] = []
    n = len(betas)
    for t in range(1, n):
        b_prev, b = float(betas[t - 1]), float(betas[t])
        path.beta = b
        calls = path.n_calls
        state = sampler.init(x, path)
        if path.n_calls == calls + 1 and path.delta is not None:
            delta = path.delta
        else:  # a sampler whose init does not evaluate the energy exactly once
            delta = path.delta_at(x)
        log_w += (b_prev - b) * delta.double()
        if record_sd:
            sd_hist.append(delta.double().std())
        if t == n - 1 and not final_transition:
            x = state.x
            break
        eps = adapter.step_size if adapter is not None else (step_sizes or [1.0] * n)[t]
        if hasattr(sampler, "step_size"):
            sampler.step_size = eps
        used.append(eps)
        info = None
        for _ in range(plan.n_transitions):
            state, info = sampler.step(state, path, generator=generator)
        x = state.x
        if track and info is not None:
            acc = info.acceptance_rate.mean()
            acc_hist.append(acc)
            if adapter is not None:
                pending.append(acc)
                if len(pending) >= sync_every:
                    for a in torch.stack(pending).tolist():
                        adapter.update(a)
                    pending = []
    if adapter is not None and pending:
        for a in torch.stack(pending).tolist():
            adapter.update(a)
    bad = ~torch.isfinite(log_w)
    if bool(bad.any()):
        n_bad = int(bad.sum())
        log_w = torch.where(torch.isnan(log_w), torch.full_like(log_w, -math.inf), log_w)
        if bool((log_w == math.inf).any()):
            raise ValueError(
                "AIS log weights reached +inf: the base energy is +inf where the target is "
                "finite; choose a base whose support covers the target's"
            )
        warnings.warn(
            f"{n_bad} of {x.shape[0]} AIS chains hit non-finite energies and got zero weight",
            RuntimeWarning,
            stacklevel=3,
        )
    acceptance = torch.stack(acc_hist).tolist() if acc_hist else []
    sds = torch.stack(sd_hist).tolist() if sd_hist else []
    return _RunOut(x, log_w, used, acceptance, sds)


def _energy_dtype_device(
    energy: Any, dtype: torch.dtype | None, device: torch.device | str | None
) -> tuple[torch.dtype, torch.device]:
    if isinstance(energy, torch.nn.Module):
        for t in (*energy.parameters(), *energy.buffers()):
            if t.is_floating_point():
                return dtype or t.dtype, torch.device(device) if device is not None else t.device
    return dtype or torch.get_default_dtype(), torch.device(device or "cpu")


def _resolve_base(
    energy: EnergyFn,
    event_shape: tuple[int, ...],
    domain: Domain,
    base: Any,
    data: Tensor | None,
    inflation: float | None,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Any, dict[str, Any]]:
    info: dict[str, Any] = {}
    if base is None or isinstance(base, str):
        kind = base or ("uniform" if domain.is_discrete else "data" if data is not None else "pilot")
        if kind == "uniform":
            if not domain.is_discrete:
                raise ValueError(
                    "base='uniform' needs a discrete domain; for continuous energies use "
                    "'data', 'pilot' or a base energy"
                )
            b: Any = UniformDiscrete(event_shape, domain, dtype=dtype, device=device)
        elif domain.is_discrete:
            raise ValueError(f"a discrete energy needs base='uniform' or a base energy, got {kind!r}")
        elif kind == "data":
            if data is None:
                raise ValueError("base='data' needs data=")
            if tuple(data.shape[1:]) != event_shape:
                raise ValueError(
                    f"data must have shape (N, {', '.join(map(str, event_shape))}), "
                    f"got {tuple(data.shape)}"
                )
            b = fit_gaussian(
                data, inflation=1.5 if inflation is None else inflation, dtype=dtype, device=device
            )
        elif kind == "pilot":
            b, pinfo = pilot_gaussian(
                energy,
                event_shape,
                inflation=2.0 if inflation is None else inflation,
                generator=generator,
                dtype=dtype,
                device=device,
            )
            info.update(pinfo)
        else:
            raise ValueError(
                f"base must be 'data', 'pilot', 'uniform' or an energy with log_z and sample, "
                f"got {base!r}"
            )
        info["base"] = kind
    else:
        if not (hasattr(base, "log_z") and hasattr(base, "sample")):
            raise ValueError(
                "a base energy must have an exact log_z and sample(n, generator=); "
                f"{type(base).__name__} lacks one"
            )
        b = base.to(device=device, dtype=dtype) if isinstance(base, torch.nn.Module) else base
        if tuple(getattr(b, "event_shape", event_shape)) != event_shape:
            raise ValueError(
                f"base event_shape {tuple(b.event_shape)} differs from the energy's {event_shape}"
            )
        info["base"] = type(b).__name__
    return b, info


def _make_sampler(
    sampler: str | Sampler,
    domain: Domain,
    event_shape: tuple[int, ...],
    n_leapfrog: int,
) -> tuple[Any, str]:
    if not isinstance(sampler, str):
        return copy.copy(sampler), type(sampler).__name__.lower()
    name = sampler
    if name == "auto":
        name = "gibbs" if domain.is_discrete else "hmc"
    if domain.is_discrete:
        if name != "gibbs":
            raise ValueError(f"discrete energies use sampler='gibbs', got {sampler!r}")
        return Gibbs(domain, event_shape), name
    if name == "gibbs":
        raise ValueError("sampler='gibbs' needs a discrete domain (pass domain=)")
    if name == "hmc":
        return HMC(0.1, n_leapfrog), name
    if name == "mala":
        return MALA(0.1), name
    if name in ("langevin", "ula"):
        return Langevin(0.01), "langevin"
    raise ValueError(
        f"sampler must be 'auto', 'hmc', 'mala', 'langevin', 'gibbs' or a sampler, got {sampler!r}"
    )


def _initial_step(base: Any, sampler_name: str, given: float | None) -> float:
    if given is not None:
        if not given > 0:
            raise ValueError(f"step_size must be > 0, got {given}")
        return float(given)
    scale = 1.0
    std = getattr(base, "std", None)
    if isinstance(std, Tensor):
        scale = float(std.double().mean())
    elif isinstance(getattr(base, "gaussian", None), torch.nn.Module):
        scale = float(base.gaussian.covariance.diagonal().double().sqrt().mean())
    return 0.5 * scale if sampler_name == "hmc" else 0.1 * scale**2


def _plan(
    energy: EnergyFn,
    *,
    event_shape: tuple[int, ...] | int | None,
    domain: Any,
    base: Any,
    data: Tensor | None,
    base_inflation: float | None,
    n_chains: int,
    n_temperatures: int,
    schedule: str | Tensor,
    sampler: str | Sampler,
    n_transitions: int,
    n_leapfrog: int,
    step_size: float | None,
    target_acceptance: float | None,
    adapt_step_size: bool,
    pilot_chains: int | None,
    pilot_temperatures: int | None,
    generator: torch.Generator | None,
    dtype: torch.dtype | None,
    device: torch.device | str | None,
) -> _Plan:
    shape = getattr(energy, "event_shape", None) if event_shape is None else event_shape
    if shape is None:
        raise ValueError("event_shape is required for an energy without .event_shape")
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if n_chains < 2:
        raise ValueError(f"n_chains must be >= 2, got {n_chains}")
    if n_temperatures < 1:
        raise ValueError(f"n_temperatures must be >= 1, got {n_temperatures}")
    if n_transitions < 1:
        raise ValueError(f"n_transitions must be >= 1, got {n_transitions}")
    d = domain_of(energy, domain)
    dt, dev = _energy_dtype_device(energy, dtype, device)
    b, info = _resolve_base(energy, shape, d, base, data, base_inflation, generator, dt, dev)
    log_z_base = float(torch.as_tensor(b.log_z).double())
    smp, name = _make_sampler(sampler, d, shape, n_leapfrog)
    adapt = adapt_step_size and bool(getattr(smp, "has_acceptance", False))
    target = target_acceptance or _TARGET_ACCEPTANCE.get(name, 0.65)
    given = step_size
    if given is None and not isinstance(sampler, str):
        given = getattr(smp, "step_size", None)
    eps0 = _initial_step(b, name, given)
    path = _Path(energy, b)
    plan = _Plan(
        b, log_z_base, path, smp, name, [], None, None, n_transitions, shape, d, dt, dev, info
    )
    info.update(sampler=repr(smp), n_transitions=n_transitions, log_z_base=log_z_base)
    if isinstance(schedule, str) and schedule == "adaptive":
        _pilot_schedule(
            plan,
            n_temperatures,
            n_chains=pilot_chains or min(n_chains, 64),
            n_pilot=pilot_temperatures or max(50, min(1000, n_temperatures // 4)),
            eps0=eps0,
            target=target,
            adapt=adapt,
            generator=generator,
        )
        info["schedule"] = "adaptive"
    else:
        betas = (
            annealing_schedule(schedule, n_temperatures)
            if isinstance(schedule, str)
            else _check_betas(schedule)
        )
        plan.betas = betas.tolist()
        if adapt:
            plan.adapter = StepSizeAdapter(eps0, target)
        else:
            plan.step_sizes = [eps0] * len(plan.betas)
        info["schedule"] = schedule if isinstance(schedule, str) else "explicit"
    info["n_temperatures"] = len(plan.betas) - 1
    info["target_acceptance"] = target if adapt else None
    return plan


def _pilot_schedule(
    plan: _Plan,
    n_temperatures: int,
    *,
    n_chains: int,
    n_pilot: int,
    eps0: float,
    target: float,
    adapt: bool,
    generator: torch.Generator | None,
) -> None:
    """Place ``plan.betas`` by thermodynamic length and tune step sizes, from a pilot run."""
    t0 = time.perf_counter()
    # A grid dense near 0 (broad bases change fastest there) and even elsewhere.
    grid = torch.cat(
        [
            torch.logspace(-6, 0, n_pilot // 2, dtype=torch.float64),
            annealing_schedule("sigmoid", n_pilot - n_pilot // 2),
        ]
    )
    grid = torch.unique(torch.cat([grid, torch.tensor([0.0, 1.0], dtype=torch.float64)]))
    pilot_betas = grid.tolist()
    adapter = StepSizeAdapter(eps0, target) if adapt else None
    x = plan.base.sample(n_chains, generator=generator).to(plan.dtype)
    out = _anneal(
        plan,
        x,
        pilot_betas,
        [eps0] * len(pilot_betas),
        generator=generator,
        adapter=adapter,
        record_sd=True,
    )
    b = torch.tensor(pilot_betas, dtype=torch.float64)
    # sd of E - E0 measured at x ~ pi_{beta_{t-1}}: one value per interval.
    sd = torch.tensor(out.delta_sd, dtype=torch.float64).nan_to_num(0.0)
    sd = torch.maximum(sd, 1e-3 * sd.max().clamp_min(1e-12))
    length = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(sd * b.diff(), 0)])
    total = float(length[-1])
    targets = torch.linspace(0.0, total, n_temperatures + 1, dtype=torch.float64)
    betas = _interp(targets, length, b)
    betas[0], betas[-1] = 0.0, 1.0
    betas = torch.cummax(betas, 0).values
    # Merge ties (flat stretches of the length): keep strictly increasing betas.
    keep = torch.cat([torch.tensor([True]), betas.diff() > 1e-15])
    betas = betas[keep]
    betas[-1] = 1.0
    plan.betas = betas.tolist()
    if out.step_sizes:
        eps_b = torch.tensor(pilot_betas[1 : 1 + len(out.step_sizes)], dtype=torch.float64)
        log_eps = torch.log(torch.tensor(out.step_sizes, dtype=torch.float64))
        plan.step_sizes = torch.exp(_interp(betas, eps_b, log_eps)).tolist()
    else:
        plan.step_sizes = [eps0] * len(plan.betas)
    plan.info.update(
        pilot_seconds=time.perf_counter() - t0,
        pilot_chains=n_chains,
        pilot_temperatures=len(pilot_betas) - 1,
        thermodynamic_length=total,
        predicted_log_weight_var=total**2 / max(1, len(plan.betas) - 1),
    )


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """Piecewise-linear interpolation (``numpy.interp``) for increasing ``xp``."""
    idx = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    y0, y1 = fp[idx - 1], fp[idx]
    w = ((x - x0) / (x1 - x0).clamp_min(1e-300)).clamp(0.0, 1.0)
    return y0 + w * (y1 - y0)


def _default_min_ess(n: int) -> float:
    return max(min(30.0, n / 2.0), 0.05 * n)


def _warn_ess(est: Estimate, min_ess: float | None, what: str) -> None:
    n = est.n_samples or 0
    floor = _default_min_ess(n) if min_ess is None else min_ess
    if est.ess is not None and est.ess < floor:
        warnings.warn(
            f"{what}: effective sample size of the final weights is {est.ess:.1f} of {n} "
            f"chains (below {floor:.0f}): the estimate {est.value:.4g} ± {est.stderr:.2g} "
            "cannot be trusted; use more temperatures, more transitions per temperature, "
            "or a base closer to the target",
            RuntimeWarning,
            stacklevel=3,
        )


def _summarize(out: _RunOut) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if out.acceptance:
        acc = torch.tensor(out.acceptance)
        d.update(acceptance_mean=float(acc.mean()), acceptance_min=float(acc.min()))
    if out.step_sizes:
        d.update(step_size_min=min(out.step_sizes), step_size_max=max(out.step_sizes))
    return d


def _forward(
    plan: _Plan, n_chains: int, generator: torch.Generator | None, *, final_transition: bool
) -> tuple[_RunOut, float, float, float]:
    x0 = plan.base.sample(n_chains, generator=generator).to(plan.dtype)
    adapter = (
        StepSizeAdapter(plan.adapter.step_size, plan.adapter.target) if plan.adapter else None
    )
    out = _anneal(
        plan,
        x0,
        plan.betas,
        plan.step_sizes,
        generator=generator,
        adapter=adapter,
        final_transition=final_transition,
    )
    lme, se, ess = weight_stats(out.log_w)
    return out, plan.log_z_base + lme, se, ess


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
    n_leapfrog: int = 5,
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
        n_leapfrog: Leapfrog steps of HMC.
        step_size: Initial step size (default from the base's scale).
        target_acceptance: Acceptance rate the step size aims at (default 0.75
            for HMC, 0.6 for MALA).
        adapt_step_size: Tune the step size per temperature.
        pilot_chains: Chains of the adaptive schedule's pilot (default
            ``min(n_chains, 64)``).
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
        >>> target = Gaussian(torch.ones(2, dtype=torch.float64), 2 * torch.eye(2, dtype=torch.float64))
        >>> est = ais_log_z(target, n_chains=64, n_temperatures=100, generator=g)
        >>> est.method, abs(est.value - float(target.log_z)) < 5 * est.stderr + 0.05
        ('ais', True)
    """
    t0 = time.perf_counter()
    plan = _plan(
        energy,
        event_shape=event_shape,
        domain=domain,
        base=base,
        data=data,
        base_inflation=base_inflation,
        n_chains=n_chains,
        n_temperatures=n_temperatures,
        schedule=schedule,
        sampler=sampler,
        n_transitions=n_transitions,
        n_leapfrog=n_leapfrog,
        step_size=step_size,
        target_acceptance=target_acceptance,
        adapt_step_size=adapt_step_size,
        pilot_chains=pilot_chains,
        pilot_temperatures=pilot_temperatures,
        generator=generator,
        dtype=dtype,
        device=device,
    )
    return _forward_estimate(
        plan, n_chains, generator, z, min_ess, return_samples, t0, stacklevel_what="AIS"
    )


def _forward_estimate(
    plan: _Plan,
    n_chains: int,
    generator: torch.Generator | None,
    z: float,
    min_ess: float | None,
    return_samples: bool,
    t0: float,
    *,
    stacklevel_what: str,
    final_transition: bool = False,
) -> Estimate:
    out, value, se, ess = _forward(plan, n_chains, generator, final_transition=final_transition)
    details = dict(plan.info)
    details.update(_summarize(out))
    details["log_weights"] = out.log_w
    details["step_sizes"] = out.step_sizes
    details["betas"] = plan.betas
    if return_samples:
        details["samples"] = out.x
    est = Estimate(
        value,
        se,
        value - z * se,
        value + z * se,
        "ais",
        time.perf_counter() - t0,
        ess=ess,
        n_samples=n_chains,
        details=details,
    )
    _warn_ess(est, min_ess, stacklevel_what)
    return est


def _reverse(
    plan: _Plan,
    samples: Tensor,
    step_sizes: Sequence[float] | None,
    generator: torch.Generator | None,
) -> tuple[_RunOut, float, float, float]:
    betas = plan.betas[::-1]
    eps = list(step_sizes)[::-1] if step_sizes is not None else None
    adapter = None
    if eps is None:
        if plan.step_sizes is not None:
            eps = plan.step_sizes[::-1]
        elif plan.adapter is not None:
            adapter = StepSizeAdapter(plan.adapter.step_size, plan.adapter.target)
    out = _anneal(plan, samples, betas, eps, generator=generator, adapter=adapter)
    lme, se, ess = weight_stats(out.log_w)
    return out, plan.log_z_base - lme, se, ess


def _reverse_estimate(
    plan: _Plan,
    samples: Tensor,
    step_sizes: Sequence[float] | None,
    generator: torch.Generator | None,
    z: float,
    min_ess: float | None,
    t0: float,
) -> Estimate:
    x = samples.detach().to(device=plan.device, dtype=plan.dtype)
    if tuple(x.shape[1:]) != plan.event_shape or x.shape[0] < 2:
        raise ValueError(
            f"samples must have shape (n >= 2, {', '.join(map(str, plan.event_shape))}), "
            f"got {tuple(samples.shape)}"
        )
    out, value, se, ess = _reverse(plan, x, step_sizes, generator)
    details = dict(plan.info)
    details.update(_summarize(out))
    details["log_weights"] = out.log_w
    est = Estimate(
        value,
        se,
        value - z * se,
        value + z * se,
        "reverse-ais",
        time.perf_counter() - t0,
        ess=ess,
        n_samples=x.shape[0],
        details=details,
    )
    _warn_ess(est, min_ess, "reverse AIS")
    return est


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
    n_leapfrog: int = 5,
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
        >>> est = reverse_ais_log_z(target, target.sample(64, generator=g), n_temperatures=100,
        ...                         generator=g)
        >>> est.method, est.n_samples
        ('reverse-ais', 64)
    """
    t0 = time.perf_counter()
    plan = _plan(
        energy,
        event_shape=tuple(samples.shape[1:]),
        domain=domain,
        base=base,
        data=data,
        base_inflation=base_inflation,
        n_chains=samples.shape[0],
        n_temperatures=n_temperatures,
        schedule=schedule,
        sampler=sampler,
        n_transitions=n_transitions,
        n_leapfrog=n_leapfrog,
        step_size=step_size,
        target_acceptance=target_acceptance,
        adapt_step_size=adapt_step_size,
        pilot_chains=None,
        pilot_temperatures=None,
        generator=generator,
        dtype=samples.dtype if samples.is_floating_point() else None,
        device=samples.device,
    )
    return _reverse_estimate(plan, samples, None, generator, z, min_ess, t0)

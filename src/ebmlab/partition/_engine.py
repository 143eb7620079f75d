"""The annealing engine behind AIS, reverse AIS and BDMC (private).

A :class:`_Plan` resolves once what a run needs (base, preconditioning map,
sampler, temperatures, per-temperature step sizes); :func:`_anneal` moves
chains along any sequence of temperatures, forward or backward, accumulating
log weights. See :mod:`ebmlab.partition.ais` for the method.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from ..samplers import HMC, MALA, Langevin, Sampler
from ._adapt import StepSizeAdapter
from ._gibbs import Gibbs
from .bases import AffineMap, DiagonalGaussian, UniformDiscrete, Whitened, fit_affine, pilot_affine
from .domain import Domain, domain_of
from .estimate import Estimate, weight_stats
from .exact import _param_dtype_device
from .schedules import SCHEDULES, annealing_schedule, check_betas, interp

_TARGET_ACCEPTANCE = {"mala": 0.6, "hmc": 0.75}


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
    log_z_base: float  # log Z0 of the base plus log |det L| of the map, if any
    amap: AffineMap | None  # working coordinates u -> x, None when x itself
    path: _Path
    sampler: Any
    sampler_name: str
    betas: list[float]
    step_sizes: list[float] | None  # per beta (index t); None: adapt on the fly
    adapter: StepSizeAdapter | None
    n_transitions: int
    max_leapfrog: int | None  # HMC: leapfrog steps drawn from 1..max per temperature
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
    leapfrog: list[int] | None = None
    if plan.max_leapfrog is not None:
        # A random trajectory length per temperature: a fixed one can resonate with the
        # target's oscillation period and barely move E (Neal 2011, sec. 5.4.2.2).
        dev = generator.device if generator is not None else torch.device("cpu")
        draws = torch.randint(
            1, plan.max_leapfrog + 1, (len(betas),), generator=generator, device=dev
        )
        leapfrog = draws.tolist()
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
        if leapfrog is not None:
            sampler.n_leapfrog = leapfrog[t]
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
) -> tuple[Any, AffineMap | None, dict[str, Any]]:
    """The base in working coordinates, the map to ``x`` (if any), and notes."""
    info: dict[str, Any] = {}
    if base is not None and not isinstance(base, str):
        if not (hasattr(base, "log_z") and hasattr(base, "sample")):
            raise ValueError(
                "a base energy must have an exact log_z and sample(n, generator=); "
                f"{type(base).__name__} lacks one"
            )
        b = base.to(device=device, dtype=dtype) if isinstance(base, torch.nn.Module) else base
        b_shape = tuple(getattr(b, "event_shape", event_shape))
        if b_shape != event_shape:
            raise ValueError(f"base event_shape {b_shape} differs from the energy's {event_shape}")
        info["base"] = type(b).__name__
        return b, None, info
    default = "uniform" if domain.is_discrete else "data" if data is not None else "pilot"
    kind = base or default
    if kind not in ("uniform", "data", "pilot"):
        raise ValueError(
            f"base must be 'data', 'pilot', 'uniform' or an energy with log_z and sample, "
            f"got {base!r}"
        )
    info["base"] = kind
    if kind == "uniform" or domain.is_discrete:
        if kind != "uniform" or not domain.is_discrete:
            raise ValueError(
                f"base={kind!r} does not fit a {domain.name} domain: use 'uniform' (or a base "
                "energy) for discrete energies, 'data' or 'pilot' for continuous ones"
            )
        return UniformDiscrete(event_shape, domain, dtype=dtype, device=device), None, info
    if kind == "data":
        if data is None:
            raise ValueError("base='data' needs data=")
        if tuple(data.shape[1:]) != event_shape:
            raise ValueError(
                f"data must have shape (N, {', '.join(map(str, event_shape))}), "
                f"got {tuple(data.shape)}"
            )
        amap = fit_affine(data.to(device=device, dtype=dtype))
        c = 1.5 if inflation is None else inflation
    else:
        amap, pinfo = pilot_affine(
            energy, event_shape, generator=generator, dtype=dtype, device=device
        )
        info.update(pinfo)
        c = 2.0 if inflation is None else inflation
    if not c > 0:
        raise ValueError(f"base_inflation must be > 0, got {c}")
    amap = amap.to(dtype, device)
    info.update(base_inflation=c, preconditioner="diagonal" if amap.is_diagonal else "full")
    zeros = torch.zeros(amap.dim, dtype=dtype, device=device)
    return DiagonalGaussian(zeros, c), amap, info


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
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {list(SCHEDULES)} or a tensor, got {schedule!r}"
            )
    else:
        schedule = check_betas(schedule)
    if isinstance(sampler, str) and sampler not in (
        "auto",
        "hmc",
        "mala",
        "langevin",
        "ula",
        "gibbs",
    ):
        _make_sampler(sampler, d, shape, n_leapfrog)  # raises the error listing the names
    dt, dev = _param_dtype_device(energy, dtype, device)
    b, amap, info = _resolve_base(energy, shape, d, base, data, base_inflation, generator, dt, dev)
    log_z_base = float(torch.as_tensor(b.log_z).double())
    work_energy: EnergyFn = energy
    if amap is not None:
        log_z_base += amap.log_det
        work_energy = Whitened(energy, amap)
    smp, name = _make_sampler(sampler, d, shape, n_leapfrog)
    adapt = adapt_step_size and bool(getattr(smp, "has_acceptance", False))
    target = target_acceptance or _TARGET_ACCEPTANCE.get(name, 0.65)
    given = step_size
    if given is None and not isinstance(sampler, str):
        given = getattr(smp, "step_size", None)
    eps0 = _initial_step(b, name, given)
    path = _Path(work_energy, b)
    max_leapfrog = 2 * n_leapfrog - 1 if isinstance(sampler, str) and name == "hmc" else None
    plan = _Plan(
        b,
        log_z_base,
        amap,
        path,
        smp,
        name,
        [],
        None,
        None,
        n_transitions,
        max_leapfrog,
        shape,
        d,
        dt,
        dev,
        info,
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
            else check_betas(schedule)
        )
        plan.betas = betas.tolist()
        if adapt:
            # Tuned in advance by a pilot run, never by the main run's own chains: step
            # sizes that depend on the chains' history would bias the weights.
            _pilot_step_sizes(
                plan,
                n_chains=pilot_chains or min(n_chains, 64),
                n_pilot=pilot_temperatures or max(50, min(1000, n_temperatures // 4)),
                eps0=eps0,
                target=target,
                generator=generator,
            )
        else:
            plan.step_sizes = [eps0] * len(plan.betas)
        info["schedule"] = schedule if isinstance(schedule, str) else "explicit"
    info["n_temperatures"] = len(plan.betas) - 1
    info["target_acceptance"] = target if adapt else None
    return plan


#: The keywords of :func:`_plan` (all but the energy).
_PLAN_KEYWORDS = (
    "event_shape",
    "domain",
    "base",
    "data",
    "base_inflation",
    "n_chains",
    "n_temperatures",
    "schedule",
    "sampler",
    "n_transitions",
    "n_leapfrog",
    "step_size",
    "target_acceptance",
    "adapt_step_size",
    "pilot_chains",
    "pilot_temperatures",
    "generator",
    "dtype",
    "device",
)


def _plan_from(energy: EnergyFn, arguments: Mapping[str, Any], **overrides: Any) -> _Plan:
    """:func:`_plan` with its options read from a public estimator's ``arguments``.

    ``ais_log_z``, ``reverse_ais_log_z`` and ``bdmc_log_z`` share the annealing
    options by name; each passes its ``locals()`` and overrides what it derives
    (e.g. the event shape from target samples). Options it does not have are
    ``None`` (their defaults).
    """
    options: dict[str, Any] = {k: arguments.get(k) for k in _PLAN_KEYWORDS}
    options.update(overrides)
    return _plan(energy, **options)


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
    betas = interp(targets, length, b)
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
        plan.step_sizes = torch.exp(interp(betas, eps_b, log_eps)).tolist()
    else:
        plan.step_sizes = [eps0] * len(plan.betas)
    plan.info.update(
        pilot_seconds=time.perf_counter() - t0,
        pilot_chains=n_chains,
        pilot_temperatures=len(pilot_betas) - 1,
        thermodynamic_length=total,
        predicted_log_weight_var=total**2 / max(1, len(plan.betas) - 1),
    )


def _pilot_step_sizes(
    plan: _Plan,
    *,
    n_chains: int,
    n_pilot: int,
    eps0: float,
    target: float,
    generator: torch.Generator | None,
) -> None:
    """Tune ``plan.step_sizes`` for the fixed ``plan.betas`` by a pilot run along a
    thinned copy of them (as :func:`_pilot_schedule` does for the adaptive schedule)."""
    t0 = time.perf_counter()
    n_b = len(plan.betas)
    keep = torch.linspace(0, n_b - 1, min(n_b, n_pilot + 1)).round().long().unique()
    pilot_betas = [plan.betas[i] for i in keep.tolist()]
    x = plan.base.sample(n_chains, generator=generator).to(plan.dtype)
    out = _anneal(
        plan,
        x,
        pilot_betas,
        [eps0] * len(pilot_betas),
        generator=generator,
        adapter=StepSizeAdapter(eps0, target),
    )
    if out.step_sizes:
        eps_b = torch.tensor(pilot_betas[1 : 1 + len(out.step_sizes)], dtype=torch.float64)
        log_eps = torch.log(torch.tensor(out.step_sizes, dtype=torch.float64))
        betas = torch.tensor(plan.betas, dtype=torch.float64)
        plan.step_sizes = torch.exp(interp(betas, eps_b, log_eps)).tolist()
    else:
        plan.step_sizes = [eps0] * n_b
    plan.info.update(
        pilot_seconds=time.perf_counter() - t0,
        pilot_chains=n_chains,
        pilot_temperatures=len(pilot_betas) - 1,
    )


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
    details["step_sizes"] = torch.tensor(out.step_sizes, dtype=torch.float64)
    details["betas"] = torch.tensor(plan.betas, dtype=torch.float64)
    if return_samples:
        details["samples"] = plan.amap.to_x(out.x) if plan.amap is not None else out.x
    est = Estimate.normal(
        value,
        se,
        z,
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
    if plan.amap is not None:
        x = plan.amap.to_u(x)
    out, value, se, ess = _reverse(plan, x, step_sizes, generator)
    details = dict(plan.info)
    details.update(_summarize(out))
    details["log_weights"] = out.log_w
    est = Estimate.normal(
        value,
        se,
        z,
        "reverse-ais",
        time.perf_counter() - t0,
        ess=ess,
        n_samples=x.shape[0],
        details=details,
    )
    _warn_ess(est, min_ess, "reverse AIS")
    return est

"""Thermodynamic observables of spin models, with standard errors, and Ising runs.

Per configuration: magnetization per spin ``m = sum_i s_i / N`` and energy per
spin ``e = H(s) / N`` (``H`` without ``beta``). Over a run, with ``N`` spins:

====================  ===========================================================
``magnetization``     ``<|m|>``, the finite-size order parameter
``energy_per_spin``   ``<e>``
``susceptibility``    ``chi = beta N (<m^2> - <|m|>^2)`` (the finite-size form with
                      ``|m|``; its peak marks the pseudo-critical temperature)
``specific_heat``     ``C = beta^2 N (<e^2> - <e>^2)``
====================  ===========================================================

Standard errors: means use the effective sample size of the time series
(:mod:`ebmlab.diagnostics`, Geyer's initial monotone sequence); ``chi`` and
``C`` use a jackknife over blocks (independent chains when there are at least
8, else consecutive time blocks). Integrated autocorrelation times are in
recorded steps.

:func:`simulate` and :func:`run_ising` run a lattice model with any discrete
sampler and estimate these; the exact values they are checked against
(Onsager, Kaufman) are in :mod:`ebmlab.lattice.exact`.

References:
    Ferrenberg, A. M. & Swendsen, R. H. (1988). New Monte Carlo technique for
    studying phase transitions. Physical Review Letters 61, 2635.
"""

from __future__ import annotations

__all__ = [
    "ISING_METHODS",
    "Estimate",
    "IsingRun",
    "Observables",
    "estimate_observables",
    "reweight_observables",
    "run_ising",
    "simulate",
]

import itertools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..diagnostics import effective_sample_size, integrated_autocorrelation_time


# ---------------------------------------------------------------------- estimates
class Estimate(NamedTuple):
    """A Monte Carlo estimate: ``value``, ``stderr`` and integrated autocorrelation time."""

    value: float
    stderr: float
    tau: float


@dataclass
class Observables:
    """Estimates of the four observables of the module table.

    Attributes:
        magnetization: ``<|m|>``.
        energy_per_spin: ``<e>``.
        susceptibility: ``beta N (<m^2> - <|m|>^2)``.
        specific_heat: ``beta^2 N (<e^2> - <e>^2)``.
        n_samples: Recorded configurations (steps x chains).
    """

    magnetization: Estimate
    energy_per_spin: Estimate
    susceptibility: Estimate
    specific_heat: Estimate
    n_samples: int

    def as_dict(self) -> dict[str, float]:
        """Flat dict: each observable with ``_stderr`` and ``_tau`` twins, and ``n_samples``."""
        out: dict[str, float] = {}
        for name in ("magnetization", "energy_per_spin", "susceptibility", "specific_heat"):
            est = getattr(self, name)
            out[name] = est.value
            out[f"{name}_stderr"] = est.stderr
            out[f"{name}_tau"] = est.tau
        out["n_samples"] = self.n_samples
        return out


def _blocks(n_steps: int, n_chains: int, n_blocks: int) -> list[tuple[slice, slice]]:
    """Jackknife blocks: chains when there are enough, else time segments."""
    if n_chains >= 8:
        edges = np.linspace(0, n_chains, min(n_chains, 32) + 1).astype(int)
        return [(slice(None), slice(a, b)) for a, b in itertools.pairwise(edges)]
    edges = np.linspace(0, n_steps, n_blocks + 1).astype(int)
    return [(slice(a, b), slice(None)) for a, b in itertools.pairwise(edges)]


def _jackknife(
    m: Tensor, e: Tensor, weights: Tensor, fn: Any, n_blocks: int = 16
) -> tuple[float, float]:
    """Weighted estimate ``fn(m, e, w)`` and its jackknife standard error over blocks."""
    full = fn(m, e, weights)
    blocks = _blocks(m.shape[0], m.shape[1], n_blocks)
    if len(blocks) < 2:
        return full, float("nan")
    reps = []
    for rows, cols in blocks:
        w = weights.clone()
        w[rows, cols] = 0.0
        reps.append(fn(m, e, w))
    r = np.asarray(reps)
    b = len(reps)
    return full, float(math.sqrt((b - 1) / b * ((r - r.mean()) ** 2).sum()))


def _mean_estimate(x: Tensor) -> Estimate:
    value = float(x.mean())
    if x.shape[0] < 4 or float(x.std()) == 0.0:
        return Estimate(value, 0.0 if float(x.std()) == 0.0 else float("nan"), float("nan"))
    ess = float(effective_sample_size(x))
    tau = float(integrated_autocorrelation_time(x))
    return Estimate(value, float(x.std()) / math.sqrt(ess), tau)


def estimate_observables(
    magnetization: Tensor,
    energy_per_spin: Tensor,
    beta: float,
    n_sites: int,
    *,
    weights: Tensor | None = None,
) -> Observables:
    """The four observables and their errors from recorded time series.

    Arguments:
        magnetization: ``m`` per step and chain, shape ``(n_steps, n_chains)``.
        energy_per_spin: ``e``, same shape.
        beta: Inverse temperature of the estimate.
        n_sites: ``N``, spins per configuration.
        weights: Optional importance weights of the same shape (histogram
            reweighting); the mean errors then come from the jackknife too.

    Returns:
        :class:`Observables`.
    """
    m = magnetization.detach().double().cpu()
    e = energy_per_spin.detach().double().cpu()
    if m.shape != e.shape or m.dim() != 2:
        raise ValueError(
            f"magnetization and energy_per_spin must share a shape (n_steps, n_chains), got "
            f"{tuple(m.shape)} and {tuple(e.shape)}"
        )
    a = m.abs()
    tau_m = float(integrated_autocorrelation_time(a)) if a.shape[0] >= 4 else float("nan")
    tau_e = float(integrated_autocorrelation_time(e)) if e.shape[0] >= 4 else float("nan")
    w = torch.ones_like(m) if weights is None else weights.detach().double().cpu()

    def wmean(x: Tensor, ww: Tensor) -> float:
        return float((x * ww).sum() / ww.sum())

    def chi(mm: Tensor, ee: Tensor, ww: Tensor) -> float:
        return beta * n_sites * (wmean(mm * mm, ww) - wmean(mm.abs(), ww) ** 2)

    def heat(mm: Tensor, ee: Tensor, ww: Tensor) -> float:
        return beta**2 * n_sites * (wmean(ee * ee, ww) - wmean(ee, ww) ** 2)

    chi_v, chi_se = _jackknife(m, e, w, chi)
    c_v, c_se = _jackknife(m, e, w, heat)
    if weights is None:
        mag = _mean_estimate(a)
        en = _mean_estimate(e)
    else:
        mag = Estimate(*_jackknife(m, e, w, lambda mm, ee, ww: wmean(mm.abs(), ww)), tau_m)
        en = Estimate(*_jackknife(m, e, w, lambda mm, ee, ww: wmean(ee, ww)), tau_e)
    return Observables(
        magnetization=mag,
        energy_per_spin=en,
        susceptibility=Estimate(chi_v, chi_se, max(tau_m, tau_e) if tau_m == tau_m else tau_m),
        specific_heat=Estimate(c_v, c_se, tau_e),
        n_samples=m.numel(),
    )


def reweight_observables(
    magnetization: Tensor,
    energy_per_spin: Tensor,
    beta_simulated: float,
    beta: float,
    n_sites: int,
) -> Observables:
    """Observables at ``beta`` from a run at ``beta_simulated`` (single-histogram reweighting).

    Each recorded configuration gets the weight
    ``exp(-(beta - beta_simulated) N e)`` (Ferrenberg & Swendsen 1988). Reliable
    while ``|beta - beta_simulated|`` stays within about one standard deviation
    of the energy histogram, ``1 / (N^(1/2) sd(e))``, of the simulated run.

    Arguments:
        magnetization: ``m``, shape ``(n_steps, n_chains)``.
        energy_per_spin: ``e``, same shape.
        beta_simulated: Inverse temperature of the run.
        beta: Target inverse temperature.
        n_sites: ``N``.
    """
    e = energy_per_spin.detach().double().cpu()
    log_w = -(beta - beta_simulated) * n_sites * e
    w = torch.exp(log_w - log_w.max())
    return estimate_observables(magnetization, energy_per_spin, beta, n_sites, weights=w)


# ---------------------------------------------------------------------- runs
@dataclass
class IsingRun:
    """Recorded series of a spin simulation.

    Attributes:
        magnetization: ``m`` per recorded step and chain, ``(n_steps, n_chains)``.
        energy_per_spin: ``e``, same shape.
        x: Final configurations ``(n_chains, *event_shape)``.
        seconds: Wall-clock time of the run.
    """

    magnetization: Tensor
    energy_per_spin: Tensor
    x: Tensor
    seconds: float


def simulate(
    model: Any,
    sampler: Any,
    x: Tensor,
    n_steps: int,
    *,
    burn_in: int = 0,
    generator: torch.Generator | None = None,
) -> IsingRun:
    """Run ``sampler`` on ``model`` from ``x`` and record ``m`` and ``e`` after each step.

    Arguments:
        model: A spin model (``hamiltonian``, ``event_shape``).
        sampler: Any spin sampler (``init``/``step``).
        x: Starting configurations ``(n_chains, *event_shape)``.
        n_steps: Recorded steps (after burn-in).
        burn_in: Steps discarded first.
        generator: Random generator.

    Returns:
        :class:`IsingRun`.
    """
    import time

    if n_steps < 1 or burn_in < 0:
        raise ValueError(f"n_steps must be >= 1 and burn_in >= 0, got {n_steps}, {burn_in}")
    t0 = time.perf_counter()
    state = sampler.init(x, model)
    for _ in range(burn_in):
        state, _ = sampler.step(state, model, generator=generator)
    n_sites = x[0].numel()
    ms, es = [], []
    with torch.no_grad():
        for _ in range(n_steps):
            state, _ = sampler.step(state, model, generator=generator)
            xs = state.x
            ms.append(xs.reshape(xs.shape[0], -1).mean(1))
            es.append(model.hamiltonian(xs) / n_sites)
    return IsingRun(
        torch.stack(ms).double(), torch.stack(es).double(), state.x, time.perf_counter() - t0
    )


#: Methods of :func:`run_ising` and the ``ebmlab ising`` command.
ISING_METHODS = ("gibbs", "metropolis", "wolff", "swendsen-wang")


def run_ising(
    size: int,
    temperature: float,
    n_sweeps: int,
    method: str = "gibbs",
    *,
    dim: int = 2,
    n_chains: int = 8,
    burn_in: int | None = None,
    field: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Simulate the periodic Ising model (``J = 1``) and estimate its observables.

    The work behind ``ebmlab ising``. Chains start fully magnetized (``+1``);
    one step is a sweep (``gibbs``, ``metropolis``), one Swendsen-Wang update,
    or one Wolff cluster flip.

    Arguments:
        size: Side ``L`` (``L^dim`` spins; even sides take the fast path).
        temperature: ``T > 0``.
        n_sweeps: Recorded steps per chain.
        method: One of :data:`ISING_METHODS`.
        dim: 2 or 3.
        n_chains: Independent chains, run as one batch.
        burn_in: Discarded steps first (default ``n_sweeps // 5``).
        field: Uniform field ``h``.
        seed: Seed of the random generator.
        device: Torch device.

    Returns:
        ``magnetization``, ``energy_per_spin``, ``susceptibility``,
        ``specific_heat``, each with ``_stderr`` and ``_tau`` twins, plus the
        settings and ``seconds``.

    Raises:
        ValueError: For a bad argument, naming it.

    Example:
        >>> out = run_ising(8, 1.5, 50, "swendsen-wang", n_chains=4)
        >>> out["magnetization"] > 0.9, "susceptibility_stderr" in out
        (True, True)
    """
    from ..samplers import DISCRETE_SAMPLERS
    from .ising import IsingModel

    if method not in ISING_METHODS:
        raise ValueError(f"method must be one of {list(ISING_METHODS)}, got {method!r}")
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}")
    if dim not in (2, 3):
        raise ValueError(f"dim must be 2 or 3, got {dim!r}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if not isinstance(n_sweeps, int) or n_sweeps < 4:
        raise ValueError(f"sweeps must be an integer >= 4, got {n_sweeps!r}")
    if not isinstance(n_chains, int) or n_chains < 1:
        raise ValueError(f"chains must be an integer >= 1, got {n_chains!r}")
    burn = n_sweeps // 5 if burn_in is None else burn_in
    if burn < 0:
        raise ValueError(f"burn_in must be >= 0, got {burn}")
    dev = torch.device(device)
    beta = 1.0 / temperature
    model = IsingModel.lattice(size, dim, field=field, beta=beta).to(dev)
    sampler = DISCRETE_SAMPLERS[method]()
    generator = torch.Generator(device=dev).manual_seed(seed)
    x0 = torch.ones((n_chains, *model.event_shape), device=dev)
    run = simulate(model, sampler, x0, n_sweeps, burn_in=burn, generator=generator)
    obs = estimate_observables(run.magnetization, run.energy_per_spin, beta, model.n_sites)
    out: dict[str, Any] = dict(obs.as_dict())
    out.update(
        size=size,
        dim=dim,
        temperature=temperature,
        method=method,
        n_chains=n_chains,
        sweeps=n_sweeps,
        burn_in=burn,
        field=field,
        seed=seed,
        seconds=run.seconds,
    )
    return out

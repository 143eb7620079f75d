"""Non-reversible parallel tempering with an adaptive schedule, batched.

``R`` replicas of each of ``C`` independent chains run at inverse temperatures
``beta_min = b_0 < b_1 < ... < b_{R-1} = 1``; replica ``k`` targets
``exp(-b_k E(x))``. One :meth:`ParallelTempering.step` (a *scan*) is one move of
the base sampler on all ``R x C`` rows at once, then one round of swaps between
adjacent temperatures with the deterministic even/odd scheme (DEO): even pairs
``(0, 1), (2, 3), ...`` on even scans, odd pairs on odd scans. A swap of
``x_k`` and ``x_{k+1}`` is accepted with probability
``min(1, exp((b_{k+1} - b_k) (E(x_{k+1}) - E(x_k))))``. The alternation makes the
index process non-reversible: a replica that keeps winning swaps keeps moving
in one direction, and the round-trip rate stays bounded away from zero as
``R`` grows (Syed et al. 2021).

:meth:`ParallelTempering.adapt` tunes the schedule in rounds of doubling
length: after each round the swap rejection rates ``r_k`` (expected, from
``min(1, .)`` of every pair every scan) give the cumulative communication
barrier ``Lambda(b_k) = sum_{j<k} r_j``, interpolated linearly, and the new
``b_k`` solve ``Lambda(b_k) = k Lambda / (R - 1)``, equalising the rejection
rates. ``Lambda = sum_k r_k`` estimates the global communication barrier and
the round-trip rate of DEO is about ``1 / (2 + 2 Lambda)`` (all replicas, per
scan). :func:`pt_summary` reports both, measured.

Base samplers: gradient samplers (MALA, HMC, ChEES) on any energy, tempered
as ``b E(x)``; their diagonal mass is scaled by ``b`` per row, so the proposal
spread grows as ``1 / sqrt(b)``, as the tempered target's does. Spin samplers
(checkerboard Gibbs, Metropolis, Wolff, Swendsen-Wang) on models with a
``with_beta`` method (Ising, Potts): the tempered model has one inverse
temperature per row, ``b_k * beta``; ``beta_min = 0`` (uniform spins) is allowed
there. For continuous energies ``beta_min`` must be > 0.

References:
    Syed, S., Bouchard-Cote, A., Deligiannidis, G. & Doucet, A. (2021).
    Non-reversible parallel tempering: a scalable highly parallel MCMC scheme.
    JRSS B 84(2). https://arxiv.org/abs/1905.02939

    Xie, W., Lewis, P. O., Fan, Y., Kuo, L. & Chen, M.-H. (2011). Improving
    marginal likelihood estimation for Bayesian phylogenetic model selection
    (the stepping-stone estimator). Systematic Biology 60(2), 150-160.

    Surjanovic, N. et al. (2023). Pigeons.jl: distributed sampling from
    intractable distributions. https://arxiv.org/abs/2308.09769
"""

from __future__ import annotations

__all__ = ["PTInfo", "PTState", "ParallelTempering", "pt_summary", "stepping_stone"]

import copy
import logging
import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._types import EnergyFn

log = logging.getLogger("ebmlab.samplers")


class PTState(NamedTuple):
    """Chains of :class:`ParallelTempering`.

    Attributes:
        x: Target (``b = 1``) replica of each chain, shape ``(C, *event_shape)``.
        base: Base-sampler state of all rows, ``R * C`` of them, row ``k * C + c``
            at temperature ``k`` of chain ``c``.
        betas: Schedule, shape ``(R,)``, increasing, last 1.
        replica: Replica id at each temperature, shape ``(R, C)``, int64.
        phase: Per replica id: 0 not yet at ``b_0``, 1 on its way up from
            ``b_0``, 2 on its way back down, shape ``(R, C)``, int64.
        round_trips: Completed ``b_0 -> 1 -> b_0`` trips per chain, shape ``(C,)``.
        rejection: Summed expected swap rejection per chain and pair,
            shape ``(C, R - 1)``.
        iteration: Scans taken, shape ``(C,)``, int64.
    """

    x: Tensor
    base: Any
    betas: Tensor
    replica: Tensor
    phase: Tensor
    round_trips: Tensor
    rejection: Tensor
    iteration: Tensor


class PTInfo(NamedTuple):
    """Per-scan diagnostics.

    Attributes:
        acceptance_rate: Base-sampler acceptance of the target replica,
            shape ``(C,)``.
        swap_acceptance: ``min(1, .)`` of every adjacent pair, shape ``(C, R - 1)``.
    """

    acceptance_rate: Tensor
    swap_acceptance: Tensor


class _Tempered:
    """``x -> b_row * E(x)`` for rows ordered as in :class:`PTState`."""

    def __init__(self, energy: EnergyFn, beta_rows: Tensor) -> None:
        self.energy = energy
        self.beta_rows = beta_rows

    def __call__(self, x: Tensor) -> Tensor:
        return self.beta_rows.to(x.dtype) * self.energy(x)


def _rows(t: Tensor, like: Tensor) -> Tensor:
    return t.reshape(t.shape + (1,) * (like.dim() - 1))


class ParallelTempering:
    """Parallel tempering over ``n_replicas`` temperatures of any energy.

    Arguments:
        base_sampler: Local move for every replica: a gradient sampler (MALA,
            HMC, ChEESHMC; adapt it first with :func:`warmup`) or a spin sampler.
        n_replicas: ``R >= 2`` temperatures.
        beta_min: Smallest inverse temperature of the initial geometric schedule
            (``0`` only for models with ``with_beta``).
        betas: An explicit increasing schedule ending at 1 (overrides the two above).

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> from ebmlab.samplers import MALA
        >>> pt = ParallelTempering(MALA(0.5), n_replicas=4, beta_min=0.1)
        >>> energy = Gaussian.standard(2)
        >>> state, info = pt.step(pt.init(torch.zeros(3, 2), energy), energy)
        >>> tuple(state.x.shape), tuple(info.swap_acceptance.shape)
        ((3, 2), (3, 3))
    """

    has_acceptance = True

    def __init__(
        self,
        base_sampler: Any,
        n_replicas: int = 8,
        *,
        beta_min: float = 0.01,
        betas: Tensor | list[float] | None = None,
    ) -> None:
        if betas is not None:
            b = torch.as_tensor(betas, dtype=torch.float64).flatten()
            if b.numel() < 2 or not bool((b[1:] > b[:-1]).all()) or float(b[-1]) != 1.0:
                raise ValueError("betas must be increasing, at least 2 of them, ending at 1")
            if float(b[0]) < 0:
                raise ValueError(f"betas must be >= 0, got {float(b[0])}")
        else:
            if int(n_replicas) < 2:
                raise ValueError(f"n_replicas must be >= 2, got {n_replicas}")
            if not 0.0 <= beta_min < 1.0:
                raise ValueError(f"beta_min must be in [0, 1), got {beta_min}")
            n = int(n_replicas)
            if beta_min > 0:
                b = torch.logspace(math.log10(beta_min), 0.0, n, dtype=torch.float64)
            else:
                b = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
            b[-1] = 1.0
        self.base_sampler = base_sampler
        self.betas = b
        self._cache: tuple[Any, ...] | None = None

    @property
    def n_replicas(self) -> int:
        """Number of temperatures ``R``."""
        return int(self.betas.numel())

    def __repr__(self) -> str:
        return f"ParallelTempering({self.base_sampler!r}, n_replicas={self.n_replicas})"

    # -- tempering --------------------------------------------------------

    def _tempered(
        self, energy: EnergyFn, betas: Tensor, n_chains: int, event_dim: int
    ) -> tuple[Any, Any]:
        """(tempered energy, base sampler with per-row mass) for ``betas``."""
        c = self._cache
        if c is not None and c[0] is energy and c[1] is betas and c[2] == n_chains:
            return c[3], c[4]
        rows = betas.repeat_interleave(n_chains)
        base = self.base_sampler
        if hasattr(energy, "with_beta"):
            model_beta = energy.beta  # type: ignore[attr-defined]
            if model_beta.dim() != 0:
                raise ValueError("parallel tempering needs a model with a scalar beta")
            tempered: Any = energy.with_beta(rows.to(model_beta.dtype) * model_beta)  # type: ignore[attr-defined]
        else:
            if float(betas[0]) <= 0:
                raise ValueError("beta_min must be > 0 for an energy without with_beta")
            tempered = _Tempered(energy, rows)
        if hasattr(base, "mass"):
            base = copy.copy(base)
            mass = torch.as_tensor(base.mass, dtype=rows.dtype, device=rows.device)
            base.mass = mass * rows.reshape((-1,) + (1,) * event_dim).clamp_min(1e-12)
        self._cache = (energy, betas, n_chains, tempered, base)
        return tempered, base

    def init(self, x: Tensor, energy: EnergyFn) -> PTState:
        """All ``R`` replicas of chain ``c`` start at ``x[c]``, ``x`` ``(C, *event_shape)``."""
        n, r = x.shape[0], self.n_replicas
        betas = self.betas.to(device=x.device, dtype=x.dtype)
        tempered, base = self._tempered(energy, betas, n, x.dim() - 1)
        rows = x.detach().repeat((r,) + (1,) * (x.dim() - 1))
        base_state = base.init(rows, tempered)
        ids = torch.arange(r, device=x.device).repeat_interleave(n).reshape(r, n)
        zeros = torch.zeros(n, dtype=x.dtype, device=x.device)
        return PTState(
            x.detach(),
            base_state,
            betas,
            ids,
            torch.zeros(r, n, dtype=torch.int64, device=x.device),
            zeros.clone(),
            torch.zeros(n, r - 1, dtype=x.dtype, device=x.device),
            torch.zeros(n, dtype=torch.int64, device=x.device),
        )

    def _untempered(self, energy: EnergyFn, base_state: Any, rows: Tensor) -> Tensor:
        e = getattr(base_state, "energy", None)
        if isinstance(e, Tensor) and bool((rows > 0).all()) and not hasattr(energy, "with_beta"):
            return e / rows.to(e.dtype)
        with torch.no_grad():
            return energy(base_state[0]).detach()

    def step(
        self, state: PTState, energy: EnergyFn, *, generator: torch.Generator | None = None
    ) -> tuple[PTState, PTInfo]:
        """One scan: a base move of all replicas, then one even or odd swap round."""
        betas = state.betas
        r, n = state.replica.shape
        tempered, base = self._tempered(energy, betas, n, state.x.dim() - 1)
        base_state, base_info = base.step(state.base, tempered, generator=generator)
        rows = betas.repeat_interleave(n)
        e = self._untempered(energy, base_state, rows).reshape(r, n)
        db = (betas[1:] - betas[:-1]).reshape(r - 1, 1)
        log_a = (db * (e[1:] - e[:-1])).nan_to_num(nan=-math.inf)
        a = torch.exp(log_a.clamp(max=0.0))  # (R-1, C)
        parity = state.iteration[0] % 2  # tensor: no host read
        k = torch.arange(r - 1, device=betas.device).reshape(r - 1, 1)
        u = torch.rand(a.shape, generator=generator, dtype=a.dtype, device=a.device)
        swap = (k % 2 == parity) & (torch.log(u) < log_a)
        perm = torch.arange(r, device=betas.device).reshape(r, 1).expand(r, n).clone()
        perm[:-1] = torch.where(swap, perm[:-1] + 1, perm[:-1])
        perm[1:] = torch.where(swap, perm[1:] - 1, perm[1:])
        fields = []
        for name, f in zip(type(base_state)._fields, base_state, strict=True):
            f3 = f.reshape((r, n, *f.shape[1:]))
            idx = perm.reshape((r, n) + (1,) * (f.dim() - 1)).expand_as(f3)
            g = f3.gather(0, idx)
            if name in ("energy", "grad") and not hasattr(energy, "with_beta"):
                scale = betas.reshape(r, 1) / betas[perm]
                g = g * scale.reshape((r, n) + (1,) * (f.dim() - 1)).to(g.dtype)
            fields.append(g.reshape(f.shape))
        base_state = type(base_state)(*fields)
        index = state.replica.gather(0, perm)
        phase = state.phase.clone()
        hot, cold = index[0:1], index[-1:]
        ph_hot = phase.gather(0, hot)
        trips = state.round_trips + (ph_hot == 2).to(state.round_trips.dtype)[0]
        phase.scatter_(0, hot, torch.ones_like(ph_hot))
        ph_cold = phase.gather(0, cold)
        phase.scatter_(0, cold, torch.where(ph_cold == 1, 2, ph_cold))
        x = base_state[0][(r - 1) * n :]
        acc = base_info.acceptance_rate[(r - 1) * n :]
        new = PTState(
            x,
            base_state,
            betas,
            index,
            phase,
            trips,
            state.rejection + (1.0 - a).T,
            state.iteration + 1,
        )
        return new, PTInfo(acc, a.T)

    # -- schedule adaptation --------------------------------------------------

    def adapt(
        self,
        energy: EnergyFn,
        x_or_state: Tensor | PTState,
        n_steps: int = 1000,
        *,
        generator: torch.Generator | None = None,
        first_round: int = 16,
        verbose: bool = False,
    ) -> tuple[ParallelTempering, PTState]:
        """Tune the schedule in rounds of doubling length (Syed et al. 2021, Alg. 4).

        Arguments:
            energy: Callable ``(N, *event_shape) -> (N,)``.
            x_or_state: Starting points ``(C, *event_shape)`` or a state.
            n_steps: Scans spent adapting (the last round is cut to fit).
            generator: Random generator.
            first_round: Scans in the first round.
            verbose: Also print the adapted schedule (always logged at INFO).

        Returns:
            ``(sampler, state)``: a copy with the schedule frozen and the chains
            with their statistics reset (round trips, rejections, scans).
        """
        pt = copy.copy(self)
        pt._cache = None
        state = pt.init(x_or_state, energy) if isinstance(x_or_state, Tensor) else x_or_state
        done, size = 0, first_round
        while done < n_steps:
            size = min(size, n_steps - done)
            state = _reset(state)
            for _ in range(size):
                state, _ = pt.step(state, energy, generator=generator)
            done += size
            rej = state.rejection.mean(0) / size  # (R-1,)
            betas = update_schedule(state.betas, rej)
            pt.betas = betas.to(torch.float64).cpu()
            base = state.base
            # cached energy/grad of the base state are for the old betas
            old = state.betas.repeat_interleave(state.x.shape[0])
            state = state._replace(betas=betas)
            if not hasattr(energy, "with_beta"):
                new_rows = betas.repeat_interleave(state.x.shape[0])
                fields = []
                for name, f in zip(type(base)._fields, base, strict=True):
                    if name in ("energy", "grad"):
                        f = f * _rows(new_rows / old, f).to(f.dtype)
                    fields.append(f)
                state = state._replace(base=type(base)(*fields))
            size *= 2
        state = _reset(state)
        msg = "adapted parallel tempering schedule: betas=" + ", ".join(
            f"{float(b):.4g}" for b in pt.betas
        )
        log.info(msg)
        if verbose:
            print(msg)
        return pt, state


def _reset(state: PTState) -> PTState:
    return state._replace(
        phase=torch.zeros_like(state.phase),
        round_trips=torch.zeros_like(state.round_trips),
        rejection=torch.zeros_like(state.rejection),
        iteration=torch.zeros_like(state.iteration),
    )


def update_schedule(betas: Tensor, rejection: Tensor) -> Tensor:
    """Betas equalising the rejection rates along the cumulative barrier.

    Arguments:
        betas: Current schedule ``(R,)``, increasing.
        rejection: Mean swap rejection of each adjacent pair ``(R - 1,)``.

    Returns:
        New schedule ``(R,)`` with the same end points.
    """
    r = rejection.to(torch.float64).clamp(1e-6, 1.0) + 1e-9
    cum = torch.cat([r.new_zeros(1), r.cumsum(0)])
    b = betas.to(torch.float64)
    targets = torch.linspace(0.0, float(cum[-1]), b.numel(), dtype=torch.float64)
    j = torch.searchsorted(cum, targets).clamp(1, b.numel() - 1)
    w = (targets - cum[j - 1]) / (cum[j] - cum[j - 1])
    new = b[j - 1] + w * (b[j] - b[j - 1])
    new[0], new[-1] = b[0], b[-1]
    return new.to(betas.dtype)


def pt_summary(state: PTState) -> dict[str, Any]:
    """Swap acceptance per pair, ``Lambda``, round-trip rate and its DEO prediction.

    Arguments:
        state: A state after some scans (statistics accumulate from the last
            :meth:`ParallelTempering.adapt` or :meth:`ParallelTempering.init`).

    Returns:
        ``swap_acceptance`` (list, per adjacent pair), ``Lambda`` (sum of
        rejection rates), ``round_trip_rate`` (round trips of all replicas per
        scan, averaged over chains), ``round_trip_rate_deo`` (``1 / (2 + 2
        Lambda)``), ``round_trip_rate_finite`` (``1 / (2 + 2 sum r/(1-r))``),
        ``betas`` and ``n_scans``.
    """
    n = int(state.iteration[0])
    if n == 0:
        raise ValueError("no scans since the statistics were reset")
    rej = (state.rejection.mean(0) / n).clamp(0.0, 1.0)
    lam = float(rej.sum())
    finite = float((rej / (1.0 - rej).clamp_min(1e-12)).sum())
    return {
        "betas": [float(b) for b in state.betas],
        "swap_acceptance": [float(1.0 - v) for v in rej],
        "Lambda": lam,
        "round_trip_rate": float(state.round_trips.mean()) / n,
        "round_trip_rate_deo": 1.0 / (2.0 + 2.0 * lam),
        "round_trip_rate_finite": 1.0 / (2.0 + 2.0 * finite),
        "n_scans": n,
    }


def stepping_stone(
    pt: ParallelTempering,
    energy: EnergyFn,
    state: PTState,
    n_scans: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[float, float, PTState]:
    """``log Z(1) - log Z(b_0)`` by the stepping-stone estimator from the replicas.

    With ``Z(b) = integral exp(-b E(x)) dx``, each ratio
    ``Z(b_{k+1}) / Z(b_k) = E_{b_k}[exp(-(b_{k+1} - b_k) E(x))]`` is averaged
    over ``n_scans`` scans of replica ``k``; the log ratios are summed over
    ``k``. The standard error comes from the spread of the per-chain
    estimates (the chains are independent). For a spin model with
    ``b_0 = 0``, ``log Z(0)`` is ``n_sites * log(q)`` (``q = 2`` for Ising), so
    adding it gives ``log Z`` of the model.

    Arguments:
        pt: A (frozen, e.g. adapted) :class:`ParallelTempering`.
        energy: The energy it samples.
        state: Its state (equilibrated: discard a burn-in first).
        n_scans: Scans to average over (>= 2).
        generator: Random generator.

    Returns:
        ``(log_ratio, stderr, state)``.
    """
    if n_scans < 2:
        raise ValueError(f"n_scans must be >= 2, got {n_scans}")
    r, n = state.replica.shape
    db = (state.betas[1:] - state.betas[:-1]).to(torch.float64).reshape(r - 1, 1)
    terms = []
    for _ in range(n_scans):
        state, _ = pt.step(state, energy, generator=generator)
        rows = state.betas.repeat_interleave(n)
        e = pt._untempered(energy, state.base, rows).to(torch.float64).reshape(r, n)
        terms.append(-db * e[:-1])  # (R-1, C)
    lw = torch.stack(terms)  # (S, R-1, C)
    log_n = math.log(n_scans)
    per_chain = (torch.logsumexp(lw, 0) - log_n).sum(0)  # (C,)
    pooled = float(
        (torch.logsumexp(lw.permute(1, 0, 2).reshape(r - 1, -1), 1) - math.log(n_scans * n)).sum()
    )
    stderr = float(per_chain.std() / math.sqrt(n)) if n > 1 else math.nan
    return pooled, stderr, state

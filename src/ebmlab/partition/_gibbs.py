"""Single-site Gibbs sampling for discrete energies (private to AIS).

Each update resamples one variable of every chain from its exact conditional:
the energies of the ``K`` alternatives are computed in one batched call and the
new value is drawn with probabilities ``softmax(-E)``. A step is one sweep:
every variable once, in order (``scan="systematic"``), or ``n_vars`` updates
at sites drawn at random per chain (``scan="random"``). Both leave
``exp(-E)`` invariant. It follows the sampler protocol (``init``/``step``,
explicit state) so AIS treats it like the continuous samplers.
"""

from __future__ import annotations

__all__ = ["Gibbs", "GibbsInfo", "GibbsState"]

from typing import NamedTuple

import torch
from torch import Tensor

from .._types import EnergyFn
from .domain import Domain


class GibbsState(NamedTuple):
    """Chains: ``x`` ``(n_chains, *event_shape)`` and ``energy`` ``(n_chains,)``."""

    x: Tensor
    energy: Tensor


class GibbsInfo(NamedTuple):
    """``acceptance_rate``: share of variables that changed value, ``(n_chains,)``."""

    acceptance_rate: Tensor


class Gibbs:
    """Single-site Gibbs sweeps over a discrete domain.

    Arguments:
        domain: The discrete domain of every variable.
        event_shape: Shape of one configuration.
        scan: ``"systematic"`` or ``"random"``.
    """

    has_acceptance = False

    def __init__(
        self, domain: Domain, event_shape: tuple[int, ...], scan: str = "systematic"
    ) -> None:
        if not domain.is_discrete:
            raise ValueError(f"Gibbs needs a discrete domain, got {domain.name}")
        if scan not in ("systematic", "random"):
            raise ValueError(f"scan must be 'systematic' or 'random', got {scan!r}")
        self.domain = domain
        self.event_shape = tuple(event_shape)
        self.scan = scan
        self.n_vars = domain.n_vars(self.event_shape)
        self.n_values = domain.n_values(self.event_shape)
        self.width = self.event_shape[-1] if domain.one_hot else 1
        self.step_size = 1.0  # unused; present so AIS can treat all samplers alike

    def __repr__(self) -> str:
        return f"Gibbs(domain={self.domain.name}, scan={self.scan!r})"

    def init(self, x: Tensor, energy: EnergyFn) -> GibbsState:
        """Chains at ``x`` with their energies cached."""
        with torch.no_grad():
            return GibbsState(x.detach(), energy(x.detach()))

    def step(
        self, state: GibbsState, energy: EnergyFn, *, generator: torch.Generator | None = None
    ) -> tuple[GibbsState, GibbsInfo]:
        """One sweep of every chain."""
        x, e = state
        n = x.shape[0]
        k, m = self.n_values, self.n_vars
        alts = self.domain.alternatives(self.event_shape, x.dtype, x.device)  # (K, width)
        flat = x.reshape(n, m, self.width).clone()
        changed = torch.zeros(n, dtype=x.dtype, device=x.device)
        rows = torch.arange(n, device=x.device)
        with torch.no_grad():
            for i in range(m):
                if self.scan == "systematic":
                    site = torch.full((n,), i, dtype=torch.long, device=x.device)
                else:
                    site = torch.randint(m, (n,), generator=generator, device=x.device)
                cand = flat.unsqueeze(0).repeat(k, 1, 1, 1)  # (K, n, m, width)
                cand[:, rows, site] = alts[:, None, :]
                e_all = energy(cand.reshape((k * n, *self.event_shape))).reshape(k, n)
                logits = -e_all.T.double()  # (n, K)
                probs = torch.softmax(logits, dim=1)
                u = torch.rand(n, 1, generator=generator, dtype=probs.dtype, device=x.device)
                choice = (probs.cumsum(1) < u).sum(1).clamp_max(k - 1)  # inverse CDF
                new = alts[choice]  # (n, width)
                changed += (new != flat[rows, site]).any(1).to(x.dtype)
                flat[rows, site] = new
                e = e_all[choice, rows]
        return GibbsState(flat.reshape(x.shape), e), GibbsInfo(changed / m)

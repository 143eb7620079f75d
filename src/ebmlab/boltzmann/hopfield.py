"""Hopfield networks: classical binary associative memory and the modern continuous one.

Classical (Hopfield 1982): spins ``s`` in {-1, +1}, symmetric couplings ``W``
with a zero diagonal, and the energy

.. math:: E(s) = -\\tfrac12 s^\\top W s - b^\\top s.

Patterns are stored by the Hebbian rule ``W = (1/N) sum_mu xi^mu xi^mu^T`` or
by Storkey's (1997) incremental rule, which subtracts the cross-talk of the
local fields and stores more patterns. Recall iterates ``s_i <- sign(h_i)``
with ``h = W s + b``: asynchronously (one unit at a time, in a random order
each sweep; the energy never increases, so it ends at a fixed point) or
synchronously (all units at once; may end in a 2-cycle). With the Hebbian rule
and random patterns, retrieval breaks down near ``P = 0.138 N`` patterns
(Amit, Gutfreund & Sompolinsky 1985).

Modern (Ramsauer et al. 2020): continuous states ``xi`` in ``R^d``, stored
patterns ``X`` (rows), inverse temperature ``beta`` and

.. math:: E(\\xi) = -\\beta^{-1} \\log \\sum_\\mu \\exp(\\beta\\, x_\\mu^\\top \\xi)
          + \\tfrac12 \\xi^\\top \\xi + \\beta^{-1} \\log P + \\tfrac12 M^2,

``M = max_mu |x_mu|``, whose update ``xi <- X^T softmax(beta X xi)`` is the
attention of transformers. It never increases the energy, retrieves a
well-separated pattern in one step, and stores exponentially many patterns in
``d``.

References:
    Hopfield (1982), https://doi.org/10.1073/pnas.79.8.2554; Amit, Gutfreund &
    Sompolinsky (1985), https://doi.org/10.1103/PhysRevLett.55.1530; Storkey
    (1997), https://doi.org/10.1007/BFb0020196; Ramsauer et al. (2020),
    "Hopfield networks is all you need", https://arxiv.org/abs/2008.02217.
"""

from __future__ import annotations

__all__ = ["HOPFIELD_RULES", "HopfieldNetwork", "ModernHopfield", "RecallResult"]

import math
from typing import NamedTuple

import torch
from torch import Tensor

from ..energies.base import Energy

#: Learning rules of :meth:`HopfieldNetwork.store`.
HOPFIELD_RULES = ("hebbian", "storkey")


class RecallResult(NamedTuple):
    """What :meth:`HopfieldNetwork.recall` returns.

    Attributes:
        states: Final states in {-1, +1}, shape ``(N, n_units)``.
        n_steps: Synchronous steps, or asynchronous single-unit flips (the
            most of any state).
        converged: Per state: reached a fixed point, shape ``(N,)``, bool.
    """

    states: Tensor
    n_steps: int
    converged: Tensor


def _as_spins(x: Tensor, name: str) -> Tensor:
    if not bool(((x == 1) | (x == -1)).all()):
        raise ValueError(f"{name} must hold only -1 and +1")
    return x


class HopfieldNetwork(Energy):
    """Classical Hopfield network on spins in {-1, +1} (see the module docstring).

    The couplings ``weight`` ``(n_units, n_units)`` and biases ``bias`` are
    buffers set by :meth:`store` (no gradient training).

    Arguments:
        n_units: Number of units ``N``.
        dtype: Dtype of the couplings.
        device: Their device.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> patterns = torch.randint(0, 2, (5, 100), generator=g).double() * 2 - 1
        >>> net = HopfieldNetwork(100, dtype=torch.float64).store(patterns)
        >>> noisy = patterns.clone(); noisy[:, :10] *= -1
        >>> out = net.recall(noisy, generator=g)
        >>> bool((out.states == patterns).all()), bool(out.converged.all())
        (True, True)
    """

    domain = "spin"
    weight: Tensor
    bias: Tensor

    def __init__(
        self,
        n_units: int,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if int(n_units) < 1:
            raise ValueError(f"n_units must be >= 1, got {n_units}")
        super().__init__(int(n_units))
        n = int(n_units)
        dtype = dtype or torch.get_default_dtype()
        self.register_buffer("weight", torch.zeros(n, n, dtype=dtype, device=device))
        self.register_buffer("bias", torch.zeros(n, dtype=dtype, device=device))
        self.n_patterns = 0

    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.bias.shape[0])

    def extra_repr(self) -> str:
        return f"n_units={self.n_units}, n_patterns={self.n_patterns}"

    def _as_param(self, x: Tensor) -> Tensor:
        return x.to(dtype=self.weight.dtype, device=self.weight.device)

    @torch.no_grad()
    def store(self, patterns: Tensor, rule: str = "hebbian") -> HopfieldNetwork:
        """Add patterns to the memory (couplings accumulate over calls).

        Arguments:
            patterns: Patterns in {-1, +1}, shape ``(P, n_units)``.
            rule: ``"hebbian"``: ``W += (1/N) sum xi xi^T``; ``"storkey"``: for
                each pattern in turn ``W_ij += (xi_i xi_j - xi_i h_ji -
                h_ij xi_j) / N`` with local fields ``h_ij = sum_{k != i, j}
                W_ik xi_k``. The diagonal stays 0.

        Returns:
            The network itself.
        """
        if rule not in HOPFIELD_RULES:
            raise ValueError(f"rule must be one of {list(HOPFIELD_RULES)}, got {rule!r}")
        if patterns.dim() != 2 or patterns.shape[1] != self.n_units:
            raise ValueError(
                f"patterns must have shape (P, {self.n_units}), got {tuple(patterns.shape)}"
            )
        xi = _as_spins(self._as_param(patterns), "patterns")
        n = self.n_units
        if rule == "hebbian":
            self.weight += xi.t() @ xi / n
        else:
            w = self.weight
            for x in xi:
                # h[i, j] = sum_{k != i, j} w_ik x_k = (w x)_i - w_ij x_j  (w_ii = 0)
                h = (w @ x)[:, None] - w * x[None, :]
                w += (torch.outer(x, x) - x[:, None] * h.t() - h * x[None, :]) / n
                w.fill_diagonal_(0.0)
        self.weight.fill_diagonal_(0.0)
        self.n_patterns += int(xi.shape[0])
        return self

    def forward(self, s: Tensor) -> Tensor:
        """Energies ``E(s) = -s W s / 2 - b s``, shape ``(N,)``; low = stable."""
        self.check_input(s)
        s = self._as_param(s)
        return -0.5 * ((s @ self.weight) * s).sum(-1) - s @ self.bias

    def local_fields(self, s: Tensor) -> Tensor:
        """``h = W s + b`` for every unit, shape ``(N, n_units)``."""
        return torch.addmm(self.bias, self._as_param(s), self.weight)

    @torch.no_grad()
    def recall(
        self,
        s: Tensor,
        *,
        mode: str = "async",
        max_sweeps: int = 100,
        generator: torch.Generator | None = None,
    ) -> RecallResult:
        """Run the dynamics ``s_i <- sign(h_i)`` from ``s`` (a field of 0 keeps ``s_i``).

        Fields within rounding error of 0 (``64 eps max_i sum_j |W_ij|``) count
        as 0.

        Arguments:
            s: Start states (queries) in {-1, +1}, shape ``(N, n_units)``.
            mode: ``"async"``: one unit at a time in random order (each step
                flips one unstable unit, ``s_i h_i < 0``, drawn uniformly: the
                random sequential dynamics without its no-op updates; the
                energy decreases at every flip, so it ends at a fixed point);
                ``"sync"``: all units at once (may cycle with period 2).
            max_sweeps: Most synchronous steps, or ``max_sweeps * n_units``
                asynchronous flips.
            generator: Random generator for the asynchronous order.

        Returns:
            A :class:`RecallResult`.
        """
        if mode not in ("async", "sync"):
            raise ValueError(f"mode must be 'async' or 'sync', got {mode!r}")
        self.check_input(s)
        x = _as_spins(self._as_param(s), "s").clone()
        # Fields within rounding error of 0 are ties (keep s_i), so rounding in
        # the incremental fields can never make a unit flip back and forth.
        scale = float(self.weight.abs().sum(-1).max()) + float(self.bias.abs().max())
        tol = 64 * torch.finfo(x.dtype).eps * scale
        if mode == "sync":
            converged = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
            n_steps = 0
            for step in range(1, int(max_sweeps) + 1):
                n_steps = step
                h = self.local_fields(x)
                new = torch.where(h.abs() <= tol, x, torch.sign(h))
                converged = (new == x).all(-1)
                x = new
                if bool(converged.all()):
                    break
            return RecallResult(x, n_steps, converged)
        # Asynchronous dynamics: updating a stable unit changes nothing, so each
        # step flips one unstable unit (s_i h_i < -tol) chosen uniformly at
        # random, in every state that still has one; the fields follow
        # incrementally. Rows that reached a fixed point leave the batch.
        w = self.weight
        keep = torch.arange(x.shape[0], device=x.device)  # rows of x still running
        xa, ha = x.clone(), self.local_fields(x)
        budget = int(max_sweeps) * self.n_units
        steps = 0
        while steps < budget:
            if steps % self.n_units == 0:
                ha = self.local_fields(xa)  # refresh: rounding never accumulates
            unstable = xa * ha < -tol
            active = unstable.any(-1)
            n_active = int(active.sum())
            if n_active == 0:
                break
            if n_active <= xa.shape[0] // 2:
                x[keep] = xa
                keep, xa, ha, unstable = keep[active], xa[active], ha[active], unstable[active]
                active = active[active]
            steps += 1
            u = torch.rand(xa.shape, generator=generator, dtype=ha.dtype, device=x.device)
            idx = torch.where(unstable, u, -1.0).argmax(-1)
            rows = torch.arange(xa.shape[0], device=x.device)
            delta = torch.where(active, -2.0 * xa[rows, idx], 0.0)  # flip: s -> -s
            xa[rows, idx] += delta
            ha += delta[:, None] * w[idx]
        x[keep] = xa
        converged = ~(x * self.local_fields(x) < -tol).any(-1)
        return RecallResult(x, steps, converged)

    @staticmethod
    def overlap(s: Tensor, patterns: Tensor) -> Tensor:
        """Overlaps ``m = s . xi / N`` between states and patterns, shape ``(N_s, P)``."""
        s = s.to(patterns.dtype)
        return s @ patterns.t() / s.shape[-1]


class ModernHopfield(Energy):
    """Modern continuous Hopfield network (Ramsauer et al. 2020).

    Arguments:
        patterns: Stored patterns ``X``, shape ``(P, d)``.
        beta: Inverse temperature (``> 0``): large = sharp retrieval.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.randint(0, 2, (500, 64), generator=g).double() * 2 - 1
        >>> net = ModernHopfield(X, beta=0.5)
        >>> query = X[:10].clone(); query[:, :16] *= -1      # 25% of bits flipped
        >>> out = net.retrieve(query)                         # one update
        >>> bool((out.sign() == X[:10]).all()), bool((net(out) <= net(query)).all())
        (True, True)
    """

    patterns: Tensor

    def __init__(self, patterns: Tensor, beta: float = 1.0) -> None:
        if patterns.dim() != 2 or patterns.shape[0] < 1:
            raise ValueError(
                f"patterns must have shape (P, d) with P >= 1, got {tuple(patterns.shape)}"
            )
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        super().__init__(int(patterns.shape[1]))
        self.register_buffer("patterns", patterns.detach().clone())
        self.beta = float(beta)

    @property
    def n_patterns(self) -> int:
        """Number of stored patterns ``P``."""
        return int(self.patterns.shape[0])

    def extra_repr(self) -> str:
        return f"n_patterns={self.n_patterns}, dim={self.event_shape[0]}, beta={self.beta}"

    def forward(self, xi: Tensor) -> Tensor:
        """Energies ``E(xi)`` (see the module docstring), shape ``(N,)``; low = retrieved."""
        self.check_input(xi)
        x = self.patterns
        xi = xi.to(x.dtype)
        lse = torch.logsumexp(self.beta * xi @ x.t(), -1) / self.beta
        big_m = float(x.norm(dim=-1).max())
        const = math.log(self.n_patterns) / self.beta + 0.5 * big_m**2
        return -lse + 0.5 * (xi * xi).sum(-1) + const

    def attention(self, xi: Tensor) -> Tensor:
        """Weights ``softmax(beta X xi)`` over the patterns, shape ``(N, P)``."""
        return torch.softmax(self.beta * xi.to(self.patterns.dtype) @ self.patterns.t(), -1)

    @torch.no_grad()
    def retrieve(self, xi: Tensor, n_steps: int = 1) -> Tensor:
        """``n_steps`` updates ``xi <- X^T softmax(beta X xi)`` (one usually suffices).

        Arguments:
            xi: Queries (state patterns), shape ``(N, d)``.
            n_steps: Updates.

        Returns:
            Retrieved states, shape ``(N, d)``.
        """
        self.check_input(xi)
        out = xi.to(self.patterns.dtype)
        for _ in range(int(n_steps)):
            out = self.attention(out) @ self.patterns
        return out

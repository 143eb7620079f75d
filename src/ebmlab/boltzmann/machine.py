"""Fully visible Boltzmann machine: pairwise couplings between all units.

.. math:: E(x) = -b^\\top x - \\tfrac12 x^\\top W x, \\qquad p(x) = \\exp(-E(x)) / Z,

with ``W`` symmetric and zero on the diagonal, units in {0, 1} (``"binary"``)
or {-1, +1} (``"spin"``; then it is an Ising model on the complete graph with
couplings ``W``). There are no hidden units, so the free energy is the energy.
Single-site Gibbs sampling draws each unit from
``p(x_i = 1 | x_rest) = sigmoid(b_i + sum_j W_ij x_j)`` (binary) or
``p(s_i = +1 | s_rest) = sigmoid(2 (b_i + sum_j W_ij s_j))`` (spin), in a
systematic scan, vectorized over chains. Training is contrastive divergence
(:func:`ebmlab.boltzmann.fit_cd`), whose gradient matches the moments
``E[x_i x_j]`` of data and model.

References:
    Ackley, Hinton & Sejnowski (1985), "A learning algorithm for Boltzmann
    machines", https://doi.org/10.1207/s15516709cog0901_7.
"""

from __future__ import annotations

__all__ = ["BoltzmannMachine"]

import time

import torch
from torch import Tensor, nn

from ..energies.base import Energy
from ..partition.estimate import Estimate
from .enumeration import MAX_ENUMERATION_UNITS, _enumerate_log_sum_exp, _gdev

_VALUES = {"binary": (0.0, 1.0), "spin": (-1.0, 1.0)}


class BoltzmannMachine(Energy):
    """Fully visible Boltzmann machine ``E(x) = -b x - x W x / 2`` (see module docstring).

    The parameter ``weight`` is unconstrained; the couplings used everywhere
    are its symmetric part with a zero diagonal (:attr:`coupling`).

    Arguments:
        n_units: Number of units.
        values: ``"binary"`` (units in {0, 1}) or ``"spin"`` ({-1, +1}).
        weight_scale: Standard deviation of the initial couplings.
        generator: Random generator for the initial couplings.
        dtype: Parameter dtype.
        device: Parameter device.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> bm = BoltzmannMachine(5, weight_scale=0.5, generator=g)
        >>> x = bm.sample(100, n_sweeps=20, generator=g)
        >>> x.shape, bm(x).shape, bool(torch.isin(x, torch.tensor([0.0, 1.0])).all())
        (torch.Size([100, 5]), torch.Size([100]), True)
        >>> bm.log_z().method
        'exact'
    """

    def __init__(
        self,
        n_units: int,
        *,
        values: str = "binary",
        weight_scale: float = 0.01,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if int(n_units) < 1:
            raise ValueError(f"n_units must be >= 1, got {n_units}")
        if values not in _VALUES:
            raise ValueError(f"values must be one of {sorted(_VALUES)}, got {values!r}")
        if not weight_scale >= 0:
            raise ValueError(f"weight_scale must be >= 0, got {weight_scale}")
        super().__init__(int(n_units))
        dtype = dtype or torch.get_default_dtype()
        n = int(n_units)
        w = torch.randn(n, n, generator=generator, dtype=dtype, device=_gdev(generator))
        w = w * weight_scale
        w = torch.triu(w, 1)
        self.weight = nn.Parameter((w + w.t()).to(device))
        self.bias = nn.Parameter(torch.zeros(n, dtype=dtype, device=device))
        self.values = values
        self.domain = values

    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.bias.shape[0])

    @property
    def coupling(self) -> Tensor:
        """Symmetric couplings with a zero diagonal, shape ``(n_units, n_units)``."""
        w = (self.weight + self.weight.t()) / 2
        return w - torch.diag_embed(torch.diagonal(w))

    def extra_repr(self) -> str:
        return f"n_units={self.n_units}, values={self.values!r}"

    def _as_param(self, x: Tensor) -> Tensor:
        return x.to(dtype=self.bias.dtype, device=self.bias.device)

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``E(x) = -b x - x W x / 2``, shape ``(N,)``; low = probable."""
        self.check_input(x)
        x = self._as_param(x)
        return -(x @ self.bias) - 0.5 * ((x @ self.coupling) * x).sum(-1)

    def free_energy(self, x: Tensor) -> Tensor:
        """The energy itself (no hidden units to sum out), shape ``(N,)``."""
        return self(x)

    def local_fields(self, x: Tensor) -> Tensor:
        """``b_i + sum_j W_ij x_j`` for every unit, shape ``(N, n_units)``."""
        return torch.addmm(self.bias, self._as_param(x), self.coupling)

    @torch.no_grad()
    def gibbs(
        self, x: Tensor, n_steps: int = 1, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """``n_steps`` systematic-scan Gibbs sweeps (each unit once per sweep).

        Arguments:
            x: States, shape ``(N, n_units)``, values in the machine's domain.
            n_steps: Sweeps.
            generator: Random generator.

        Returns:
            New states, shape ``(N, n_units)``.
        """
        x = self._as_param(x).clone()
        w, b = self.coupling, self.bias
        lo, hi = _VALUES[self.values]
        scale = 2.0 if self.values == "spin" else 1.0
        for _ in range(int(n_steps)):
            u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            for i in range(self.n_units):
                field = b[i] + x @ w[:, i]
                up = u[:, i] < torch.sigmoid(scale * field)
                x[:, i] = torch.where(up, hi, lo)
        return x

    @torch.no_grad()
    def sample(
        self,
        n: int,
        n_sweeps: int = 100,
        *,
        init: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """States of ``n`` independent Gibbs chains after ``n_sweeps`` sweeps.

        Arguments:
            n: Number of chains (ignored when ``init`` is given).
            n_sweeps: Sweeps per chain.
            init: Starting states ``(N, n_units)``; default uniform.
            generator: Random generator.

        Returns:
            States, shape ``(n, n_units)``.
        """
        if init is None:
            lo, hi = _VALUES[self.values]
            shape = (int(n), self.n_units)
            u = torch.rand(
                shape, generator=generator, dtype=self.bias.dtype, device=self.bias.device
            )
            init = torch.where(u < 0.5, hi, lo)
        return self.gibbs(init, n_sweeps, generator=generator)

    @torch.no_grad()
    def exact_log_z(self, *, chunk_size: int = 2**16) -> Estimate:
        """Exact ``log Z = log sum_x exp(-E(x))`` by enumerating all ``2^n`` states.

        Raises:
            ValueError: With more than 26 units.
        """
        t0 = time.perf_counter()
        if self.n_units > MAX_ENUMERATION_UNITS:
            raise ValueError(
                f"the machine has {self.n_units} units, more than {MAX_ENUMERATION_UNITS}: "
                "enumeration would take too long"
            )
        value = _enumerate_log_sum_exp(
            self,
            self.n_units,
            dtype=self.bias.dtype,
            device=self.bias.device,
            chunk_size=chunk_size,
            values=_VALUES[self.values],
        )
        return Estimate.exact(
            value,
            time.perf_counter() - t0,
            n_samples=2**self.n_units,
            details={"n_units": self.n_units},
        )

    def log_z(self) -> Estimate:
        """``log Z`` (exact enumeration; see :meth:`exact_log_z`)."""
        return self.exact_log_z()

    @torch.no_grad()
    def log_prob(self, x: Tensor, log_z: float | Estimate | None = None) -> Tensor:
        """``log p(x) = -E(x) - log Z``, shape ``(N,)``."""
        if log_z is None:
            log_z = self.exact_log_z()
        return -self(x).double() - float(log_z)

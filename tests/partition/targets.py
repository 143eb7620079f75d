"""Test energies with exact log Z: correlated Gaussians, Gaussian mixtures, small
binary Boltzmann energies (enumerable), independent-field energies (closed form).

The benchmark ``benchmarks/partition.py`` builds the same targets.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ebmlab.energies import Energy, Gaussian, GaussianMixture


def correlated_gaussian(d: int, seed: int = 0, lo: float = 0.1, hi: float = 10.0) -> Gaussian:
    """``N(mu, Q diag(lambda) Q^T)``: random rotation, eigenvalues log-spaced in [lo, hi]."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    lam = torch.logspace(math.log10(lo), math.log10(hi), d, dtype=torch.float64)
    cov = q @ torch.diag(lam) @ q.T
    return Gaussian(torch.randn(d, generator=g, dtype=torch.float64), 0.5 * (cov + cov.T))


def mixture(d: int, k: int, seed: int = 0, spread: float = 3.0) -> GaussianMixture:
    """``k`` well-separated components with random full covariances and unequal weights."""
    g = torch.Generator().manual_seed(seed)
    means = spread * torch.randn(k, d, generator=g, dtype=torch.float64)
    covs = []
    for _ in range(k):
        a = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
        covs.append(0.3 * torch.eye(d, dtype=torch.float64) + 0.5 * a @ a.T)
    w = torch.rand(k, generator=g, dtype=torch.float64) + 0.5
    return GaussianMixture(w, means, torch.stack(covs))


class Shifted(Energy):
    """``E(x) + c``: the same density, ``log Z`` lowered by ``c`` (no ``sample``)."""

    def __init__(self, energy: Energy, shift: float) -> None:
        super().__init__(energy.event_shape)
        self.energy = energy
        self.shift = shift

    def forward(self, x: Tensor) -> Tensor:
        return self.energy(x) + self.shift


class Boltzmann(Energy):
    """``E(x) = -x^T W x / 2 - b^T x`` on ``{0,1}^D`` (or spins with ``domain="spin"``)."""

    def __init__(self, d: int, seed: int = 0, scale: float = 1.0, domain: str = "binary"):
        super().__init__((d,))
        self.domain = domain
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(d, d, generator=g, dtype=torch.float64) * scale / math.sqrt(d)
        w = 0.5 * (w + w.T)
        w.fill_diagonal_(0.0)
        self.register_buffer("w", w)
        self.register_buffer("b", 0.5 * torch.randn(d, generator=g, dtype=torch.float64))

    w: Tensor
    b: Tensor

    def forward(self, x: Tensor) -> Tensor:
        x = x.reshape(x.shape[0], -1)
        return -0.5 * ((x @ self.w) * x).sum(-1) - x @ self.b


class Fields(Energy):
    """Independent variables: ``E(x) = sum_i h_i x_i`` (value-coded) or ``sum h_ik x_ik``
    (one-hot); ``log Z = sum_i log sum_v exp(-h_i v)`` in closed form."""

    def __init__(self, h: Tensor, domain: object) -> None:
        one_hot = domain == "onehot"
        super().__init__(tuple(h.shape) if one_hot else (h.shape[0],))
        self.domain = domain
        self.register_buffer("h", h.double())

    h: Tensor

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.h).reshape(x.shape[0], -1).sum(-1)

    def exact_log_z(self, values: list[float] | None) -> float:
        if values is None:  # one-hot rows
            return float(torch.logsumexp(-self.h, dim=-1).sum())
        v = torch.tensor(values, dtype=torch.float64)
        return float(torch.logsumexp(-self.h[:, None] * v, dim=-1).sum())

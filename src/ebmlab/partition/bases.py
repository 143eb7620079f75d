"""Tractable base distributions for annealed importance sampling.

A base is an :class:`~ebmlab.energies.Energy` that also knows its exact
``log_z`` and draws exact samples with ``sample(n, generator=)``. Any energy
with those two members works (``Gaussian``, ``GaussianMixture``...); this
module adds the ones AIS builds for itself:

- :class:`DiagonalGaussian`: independent normals for any event shape;
- :func:`fit_gaussian`: a Gaussian fitted to data (full covariance when the
  data allow, else diagonal), optionally widened;
- :func:`pilot_gaussian`: with the event shape alone, a broad diagonal
  Gaussian placed from a short adaptive MALA run on the target itself;
- :class:`UniformDiscrete`: the uniform distribution over a discrete domain.
"""

from __future__ import annotations

__all__ = [
    "DiagonalGaussian",
    "FullGaussian",
    "UniformDiscrete",
    "fit_gaussian",
    "pilot_gaussian",
]

import math
from typing import Any

import torch
from torch import Tensor

from .._types import EnergyFn
from ..energies import Energy, Gaussian
from ..samplers import MALA
from ._adapt import StepSizeAdapter
from .domain import Domain, parse_domain


class DiagonalGaussian(Energy):
    """Independent normals ``E(x) = sum ((x - mean) / std)^2 / 2`` over any event shape.

    Arguments:
        mean: Mean, shaped like one event.
        std: Standard deviations, positive, broadcastable to the event shape.

    Example:
        >>> base = DiagonalGaussian(torch.zeros(2, 3), torch.ones(2, 3))
        >>> tuple(base.sample(5).shape), round(float(base.log_z), 4)  # 3 log(2 pi)
        ((5, 2, 3), 5.5136)
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Tensor, std: Tensor | float) -> None:
        mean = torch.as_tensor(mean)
        if not mean.is_floating_point():
            mean = mean.to(torch.get_default_dtype())
        std_t = torch.as_tensor(std, dtype=mean.dtype, device=mean.device).expand_as(mean)
        if not bool((std_t > 0).all()) or not bool(torch.isfinite(std_t).all()):
            raise ValueError("std must be positive and finite")
        super().__init__(tuple(mean.shape) if mean.dim() else (1,))
        self.register_buffer("mean", mean.reshape(self.event_shape).clone())
        self.register_buffer("std", std_t.reshape(self.event_shape).clone().contiguous())

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``(N,)`` of ``x`` ``(N, *event_shape)``."""
        z = (x - self.mean) / self.std
        return 0.5 * z.reshape(x.shape[0], -1).pow(2).sum(1)

    @property
    def log_z(self) -> Tensor:
        """``D/2 log(2 pi) + sum log std``, a 0-d tensor."""
        return 0.5 * self.dim * math.log(2 * math.pi) + torch.log(self.std).sum()

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Exact samples, shape ``(n, *event_shape)``."""
        z = torch.randn(
            (n, *self.event_shape), generator=generator, dtype=self.mean.dtype,
            device=self.mean.device,
        )  # fmt: skip
        return self.mean + self.std * z

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}"


class FullGaussian(Energy):
    """A full-covariance :class:`~ebmlab.energies.Gaussian` over any event shape.

    Events are flattened to ``D`` coordinates for the Gaussian and reshaped back.

    Example:
        >>> base = FullGaussian(torch.zeros(4), torch.eye(4), (2, 2))
        >>> tuple(base.sample(3).shape), tuple(base(torch.zeros(3, 2, 2)).shape)
        ((3, 2, 2), (3,))
    """

    def __init__(self, mean: Tensor, covariance: Tensor, event_shape: tuple[int, ...]) -> None:
        super().__init__(event_shape)
        self.gaussian = Gaussian(mean.reshape(-1), covariance)
        if self.gaussian.mean.numel() != self.dim:
            raise ValueError(
                f"mean has {self.gaussian.mean.numel()} entries, event_shape {event_shape} "
                f"needs {self.dim}"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``(N,)`` of ``x`` ``(N, *event_shape)``."""
        return self.gaussian(x.reshape(x.shape[0], -1))

    @property
    def log_z(self) -> Tensor:
        """Exact log normalizer, a 0-d tensor."""
        return self.gaussian.log_z

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Exact samples, shape ``(n, *event_shape)``."""
        return self.gaussian.sample(n, generator=generator).reshape((n, *self.event_shape))


class UniformDiscrete(Energy):
    """The uniform distribution over a discrete domain: ``E = 0``, ``Z = K ** n_vars``.

    Arguments:
        event_shape: Shape of one configuration.
        domain: A discrete domain (``"binary"``, ``"spin"``, ``K``, values, ``"onehot"``).
        dtype: Dtype of samples and energies.
        device: Their device.

    Example:
        >>> u = UniformDiscrete((3,), "binary")
        >>> round(float(u.log_z), 4), tuple(u.sample(2).shape)  # 3 log 2
        (2.0794, (2, 3))
    """

    def __init__(
        self,
        event_shape: tuple[int, ...] | int,
        domain: Any = "binary",
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(event_shape)
        d = parse_domain(domain, self.event_shape)
        if not d.is_discrete:
            raise ValueError(f"UniformDiscrete needs a discrete domain, got {domain!r}")
        self.domain_spec: Domain = d
        dtype = dtype or torch.get_default_dtype()
        self.register_buffer("alts", d.alternatives(self.event_shape, dtype, device))

    alts: Tensor

    @property
    def domain(self) -> Domain:
        """The discrete domain (so enumeration and Gibbs know it)."""
        return self.domain_spec

    def forward(self, x: Tensor) -> Tensor:
        """Zeros, shape ``(N,)``."""
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    @property
    def log_z(self) -> Tensor:
        """``n_vars log K``, a 0-d tensor."""
        return torch.tensor(
            self.domain_spec.log_n_states(self.event_shape),
            dtype=self.alts.dtype,
            device=self.alts.device,
        )

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Uniform configurations, shape ``(n, *event_shape)``."""
        k = self.alts.shape[0]
        n_vars = self.domain_spec.n_vars(self.event_shape)
        idx = torch.randint(k, (n, n_vars), generator=generator, device=self.alts.device)
        return self.alts[idx].reshape((n, *self.event_shape))

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, domain={self.domain_spec.name}"


def fit_gaussian(
    data: Tensor,
    *,
    inflation: float = 1.0,
    diagonal: bool | None = None,
    shrinkage: float = 1e-3,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Energy:
    """A Gaussian base fitted to data by moments, optionally widened.

    Arguments:
        data: Samples, shape ``(N, *event_shape)``, ``N >= 2``, finite.
        inflation: Multiply every standard deviation by this (``>= 1`` makes
            the base broader than the data: safer for AIS).
        diagonal: Diagonal covariance; default: full when ``N > 2 D`` and
            ``D <= 1024``, else diagonal.
        shrinkage: Share of the mean variance added to the diagonal, keeping the
            covariance well conditioned.
        dtype: Dtype of the base (default: that of ``data`` if floating).
        device: Device of the base (default: that of ``data``).

    Returns:
        A :class:`FullGaussian` or :class:`DiagonalGaussian` (both with
        ``log_z`` and ``sample``).

    Example:
        >>> x = torch.randn(500, 3, generator=torch.Generator().manual_seed(0)) * 2
        >>> base = fit_gaussian(x)
        >>> type(base).__name__, tuple(base.sample(4).shape)
        ('FullGaussian', (4, 3))
    """
    if data.dim() < 2 or data.shape[0] < 2:
        raise ValueError(f"data must have shape (N, *event_shape) with N >= 2, got {data.shape}")
    if not inflation > 0:
        raise ValueError(f"inflation must be > 0, got {inflation}")
    if not 0 <= shrinkage < 1:
        raise ValueError(f"shrinkage must be in [0, 1), got {shrinkage}")
    dtype = dtype or (data.dtype if data.is_floating_point() else torch.get_default_dtype())
    event_shape = tuple(data.shape[1:])
    x = data.detach().reshape(data.shape[0], -1).to(device=device, dtype=torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("data must be finite to fit a Gaussian base")
    n, d = x.shape
    mean = x.mean(0)
    var = x.var(0)
    floor = max(float(var.mean()), 1e-12)
    if diagonal is None:
        diagonal = not (n > 2 * d and d <= 1024)
    if diagonal:
        std = (var * (1 - shrinkage) + shrinkage * floor).clamp_min(1e-12 * floor).sqrt()
        return DiagonalGaussian(mean.reshape(event_shape).to(dtype), (inflation * std).to(dtype))
    xc = x - mean
    cov = xc.T @ xc / (n - 1)
    cov = (1 - shrinkage) * cov + shrinkage * floor * torch.eye(d, dtype=cov.dtype, device=x.device)
    cov = 0.5 * (cov + cov.T) * inflation**2
    return FullGaussian(mean.to(dtype), cov.to(dtype), event_shape)


def pilot_gaussian(
    energy: EnergyFn,
    event_shape: tuple[int, ...],
    *,
    inflation: float = 2.0,
    n_chains: int = 128,
    n_steps: int = 300,
    init_scale: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[DiagonalGaussian, dict[str, Any]]:
    """A broad diagonal Gaussian base found from the event shape alone.

    ``n_chains`` MALA chains start from ``N(0, init_scale^2)`` and run
    ``n_steps`` steps on the target, the step size adapted towards an
    acceptance of 0.57; the states of the last third give a per-coordinate
    mean and standard deviation, which are widened by ``inflation``. The base
    only needs to cover the target's mass roughly: AIS corrects the rest.

    Returns:
        ``(base, info)`` where ``info`` holds the pilot's final step size and
        acceptance.
    """
    if not inflation > 0:
        raise ValueError(f"inflation must be > 0, got {inflation}")
    dtype = dtype or torch.get_default_dtype()
    x = init_scale * torch.randn(
        (n_chains, *event_shape), generator=generator, dtype=dtype, device=device
    )
    adapter = StepSizeAdapter(0.1 * init_scale, target=0.57)
    sampler = MALA(adapter.step_size)
    state = sampler.init(x, energy)
    kept: list[Tensor] = []
    acc = torch.zeros((), dtype=dtype, device=x.device)
    keep_from = n_steps - n_steps // 3
    for t in range(n_steps):
        sampler.step_size = adapter.step_size
        state, info = sampler.step(state, energy, generator=generator)
        acc = info.acceptance_rate.mean()
        if t < keep_from:
            adapter.update(float(acc))
        elif (t - keep_from) % 5 == 0:
            kept.append(state.x)
    draws = torch.cat(kept).double()
    finite = torch.isfinite(draws.reshape(draws.shape[0], -1)).all(1)
    if not bool(finite.any()):
        raise ValueError("pilot MCMC for the AIS base produced only non-finite states")
    draws = draws[finite]
    mean = draws.mean(0)
    std = draws.std(0)
    scale = float(std.mean())
    std = std.clamp_min(0.1 * max(scale, 1e-6))
    base = DiagonalGaussian(mean.to(dtype), (inflation * std).to(dtype))
    return base, {"pilot_step_size": adapter.step_size, "pilot_acceptance": float(acc)}

"""Unadjusted Langevin dynamics (ULA / SGLD), as used to train deep EBMs."""

from __future__ import annotations

__all__ = ["Langevin", "LangevinInfo", "LangevinState"]

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .._types import EnergyFn
from ..energies.base import energy_and_grad
from ._compile import CompiledKernels
from .base import GradientState

#: Chains of :class:`Langevin`: ``x``, ``energy``, ``grad`` (the shared :class:`GradientState`).
LangevinState = GradientState


class LangevinInfo(NamedTuple):
    """Per-step diagnostics: ``acceptance_rate`` is 1 (no Metropolis step)."""

    acceptance_rate: Tensor


class Langevin:
    """Unadjusted Langevin algorithm, ``x' = x - eps grad E(x) + sigma z``.

    With the default ``noise_scale = sqrt(2 eps)`` this is the Euler
    discretization of the Langevin diffusion whose stationary law is
    ``exp(-E)``, up to an ``O(eps)`` bias (use :class:`~ebmlab.samplers.MALA`
    to remove it). Deep-EBM recipes often set ``noise_scale`` much smaller than
    ``sqrt(2 eps)``: that samples a colder distribution, faster.

    Arguments:
        step_size: ``eps > 0``, the gradient step.
        noise_scale: ``sigma >= 0``; default ``sqrt(2 * step_size)``.
        grad_clip: If set, each chain's gradient is rescaled to at most this
            Euclidean norm.
        grad_clamp: If set, each coordinate of the gradient is clamped to
            ``[-grad_clamp, grad_clamp]`` (the per-pixel clamp of image
            recipes, Du & Mordatch 2019); applied after ``grad_clip``.
        clamp: If set, ``(low, high)`` bounds applied to ``x`` after each step
            (e.g. ``(-1, 1)`` for images).
        compile: Fuse the update with the energy's forward and backward pass
            through ``torch.compile`` (CUDA graphs on GPU); falls back to the
            eager step with a warning when compilation is impossible. The noise
            still comes from the caller's generator.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> sampler = Langevin(step_size=0.01)
        >>> state = sampler.init(torch.zeros(4, 2), Gaussian.standard(2))
        >>> state, info = sampler.step(state, Gaussian.standard(2))
        >>> tuple(state.x.shape)
        (4, 2)
    """

    has_acceptance = False

    def __init__(
        self,
        step_size: float,
        noise_scale: float | None = None,
        *,
        grad_clip: float | None = None,
        clamp: tuple[float, float] | None = None,
        compile: bool = False,
        grad_clamp: float | None = None,
    ) -> None:
        if not step_size > 0:
            raise ValueError(f"step_size must be > 0, got {step_size}")
        if noise_scale is not None and not noise_scale >= 0:
            raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0, got {grad_clip}")
        if grad_clamp is not None and not grad_clamp > 0:
            raise ValueError(f"grad_clamp must be > 0, got {grad_clamp}")
        if clamp is not None and not clamp[0] < clamp[1]:
            raise ValueError(f"clamp must be (low, high) with low < high, got {clamp}")
        self.step_size = float(step_size)
        self.noise_scale = (
            math.sqrt(2.0 * step_size) if noise_scale is None else float(noise_scale)
        )
        self.grad_clip = grad_clip
        self.grad_clamp = None if grad_clamp is None else float(grad_clamp)
        self.clamp = clamp
        self.compile = bool(compile)
        self._ones: Tensor | None = None
        self._cached_info: LangevinInfo | None = None
        self._kernels = CompiledKernels(self._build_kernel, self._eager_kernel)

    def __repr__(self) -> str:
        return (
            f"Langevin(step_size={self.step_size}, noise_scale={self.noise_scale:.4g}, "
            f"grad_clip={self.grad_clip}, clamp={self.clamp}, compile={self.compile}"
            + (f", grad_clamp={self.grad_clamp})" if self.grad_clamp is not None else ")")
        )

    def _move(self, x: Tensor, grad: Tensor, noise: Tensor) -> Tensor:
        if self.grad_clip is not None:
            norm = grad.reshape(grad.shape[0], -1).norm(dim=1).clamp_min(1e-12)
            factor = (self.grad_clip / norm).clamp(max=1.0)
            grad = grad * factor.reshape((-1,) + (1,) * (grad.dim() - 1))
        if self.grad_clamp is not None:
            grad = grad.clamp(-self.grad_clamp, self.grad_clamp)
        # Two fused kernels: x - eps * grad, then + sigma * noise in place.
        x_new = torch.add(x, grad, alpha=-self.step_size).add_(noise, alpha=self.noise_scale)
        if self.clamp is not None:
            x_new = x_new.clamp(*self.clamp)
        return x_new

    def _build_kernel(self, value_and_grad: Any) -> Any:
        def kernel(x: Tensor, grad: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            x_new = self._move(x, grad, noise)
            e, g = value_and_grad(x_new)
            return x_new, e, g

        return kernel

    def _eager_kernel(
        self, energy: EnergyFn, x: Tensor, grad: Tensor, noise: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        x_new = self._move(x, grad, noise)
        e, g = energy_and_grad(energy, x_new)
        return x_new, e, g

    def init(self, x: Tensor, energy: EnergyFn) -> LangevinState:
        """Chains at ``x`` ``(n_chains, *event_shape)`` with energy and gradient cached."""
        x = x.detach()
        if self.clamp is not None:
            x = x.clamp(*self.clamp)
        e, g = energy_and_grad(energy, x)
        return LangevinState(x, e, g)

    def _info(self, x: Tensor) -> LangevinInfo:
        """The constant Info (acceptance 1), cached per shape, dtype and device."""
        info = self._cached_info
        if info is None or info.acceptance_rate is not self._acceptance(x):
            info = self._cached_info = LangevinInfo(self._acceptance(x))
        return info

    def _acceptance(self, x: Tensor) -> Tensor:
        ones = self._ones
        if (
            ones is None
            or ones.shape[0] != x.shape[0]
            or ones.device != x.device
            or ones.dtype != x.dtype
        ):
            ones = self._ones = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
        return ones

    def final_move(
        self, state: LangevinState, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """The configurations one :meth:`step` would reach, without their energy.

        The same random draws as :meth:`step` (so the same chains); it skips
        the energy and gradient at the new point, which a caller that only
        needs the end points (contrastive divergence's negatives) never reads:
        one forward and backward pass fewer per chain run.
        """
        noise = torch.empty_like(state.x).normal_(generator=generator)
        return self._move(state.x, state.grad, noise)

    def step(
        self,
        state: LangevinState,
        energy: EnergyFn,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[LangevinState, LangevinInfo]:
        """One Langevin move of every chain."""
        x = state.x
        noise = torch.empty_like(x).normal_(generator=generator)
        if self.compile:
            x_new, e, g = self._kernels(energy, x, state.grad, noise)
            if self._kernels.reuses_outputs:
                # CUDA graphs write every replay into the same buffers: without a copy, a
                # state kept by the caller (run(..., thin>0), improved CD's last step)
                # would be overwritten by the next step.
                x_new, e, g = x_new.clone(), e.clone(), g.clone()
        else:
            x_new, e, g = self._eager_kernel(energy, x, state.grad, noise)
        return LangevinState(x_new, e, g), self._info(x)

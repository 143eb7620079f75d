"""The optional fast path (``compile=True``) of the gradient-based samplers.

On the CPU, an energy that offers ``fused_energy_and_grad(x) -> (e, g)``
(:class:`~ebmlab.energies.MLPEnergy` does) is evaluated through it: a
hand-derived backward pass in cache-sized row blocks, no compilation needed.
Otherwise the compiled kernels fuse the energy's forward and backward passes (and, for
Langevin, the update) into one graph; randomness stays outside, drawn from the
caller's explicit generator, so results are the same chains in distribution
(and equal up to floating-point reassociation). On CUDA the ``reduce-overhead``
mode records CUDA graphs for static shapes; their outputs live in buffers that
the next replay overwrites (:attr:`CompiledKernels.reuses_outputs`), so a
sampler whose states are the kernel's outputs must copy them before a caller
keeps one. If compilation fails (no C++ compiler, an energy dynamo cannot
trace...), a ``RuntimeWarning`` is issued once and the eager path is used.
"""

from __future__ import annotations

__all__ = ["CompiledKernels"]

import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.func import grad_and_value

from .._types import EnergyFn

Kernel = Callable[..., Any]


def _value_and_grad_fn(energy: EnergyFn) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
    def total(z: Tensor) -> tuple[Tensor, Tensor]:
        e = energy(z)
        return e.sum(), e

    gv = grad_and_value(total, has_aux=True)

    def energy_and_grad(x: Tensor) -> tuple[Tensor, Tensor]:
        g, (_, e) = gv(x)
        return e, g

    return energy_and_grad


def _compile_mode(device_type: str) -> str:
    """``torch.compile`` mode: ``reduce-overhead`` (CUDA graphs) on CUDA, else ``default``."""
    return "reduce-overhead" if device_type == "cuda" else "default"


class CompiledKernels:
    """Per-energy cache of compiled kernels with an eager fallback.

    Arguments:
        build: ``build(energy_and_grad_fn) -> kernel``: wraps the traced
            value-and-gradient function into the kernel to compile.
        eager: The kernel to use when compilation is off or has failed.

    Attributes:
        reuses_outputs: Whether the current kernel returns the same output
            buffers at every call (CUDA graphs), overwriting the previous results.
    """

    def __init__(self, build: Callable[[Callable[..., Any]], Kernel], eager: Kernel) -> None:
        self.build = build
        self.eager = eager
        self._energy: Callable[[], Any] | None = None
        self._kernel: Kernel | None = None
        self._device_type = ""
        self.failed = False
        self.reuses_outputs = False

    def __call__(self, energy: EnergyFn, *args: Tensor) -> Any:
        if self.failed:
            return self.eager(energy, *args)
        cached = self._energy() if self._energy is not None else None
        device_type = args[0].device.type
        if cached is not energy or self._kernel is None or device_type != self._device_type:
            fused = getattr(energy, "fused_energy_and_grad", None)
            if device_type == "cpu" and callable(fused):
                self._kernel = self.build(fused)
                self.reuses_outputs = False
            else:
                kernel = self.build(_value_and_grad_fn(energy))
                mode = _compile_mode(device_type)
                self._kernel = torch.compile(kernel, dynamic=False, mode=mode)
                self.reuses_outputs = mode == "reduce-overhead"
            self._device_type = device_type
            try:
                self._energy = weakref.ref(energy)
            except TypeError:  # callables without weakref support: keep them alive
                self._energy = lambda: energy
        try:
            with torch.no_grad():
                return self._kernel(*args)
        except Exception as exc:
            self.failed = True
            self.reuses_outputs = False
            warnings.warn(
                f"torch.compile fast path unavailable ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160]}); using the eager sampler",
                RuntimeWarning,
                stacklevel=3,
            )
            return self.eager(energy, *args)

    def __getstate__(self) -> dict[str, Any]:  # compiled graphs are not copied
        return {
            "build": self.build,
            "eager": self.eager,
            "_energy": None,
            "_kernel": None,
            "_device_type": "",
            "failed": self.failed,
            "reuses_outputs": False,
        }

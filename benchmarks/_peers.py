"""Adapters that drive other libraries' Langevin samplers for ``sampling.py``.

Each ``make_*`` function takes the energy module (an ``nn.Module`` mapping
``(N, D)`` to ``(N,)``), the step size ``eps`` and the noise scale ``sigma`` of
the update ``x' = x - eps * grad E(x) + sigma * z`` and returns a function
``run_fn(x0, n_steps, generator) -> x`` that drives the library's public
sampler API for ``n_steps`` steps from ``x0``. ``generator`` is a seeded
``torch.Generator``; libraries without such an argument use the global RNG,
which the harness seeds with the same seed before every run.

The peers are imported lazily: they live only in ``.bench-venv``, never in
ebmlab's own dependencies. Nothing here is copied from them; the adapters only
call their documented entry points.
"""

from __future__ import annotations

import importlib.metadata
import itertools
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

RunFn = Callable[[Tensor, int, "torch.Generator | None"], Tensor]

#: Peer name -> (distribution name on PyPI, import name).
PEERS: dict[str, tuple[str, str]] = {
    "torchebm": ("torchebm", "torchebm"),
    "ebmkit": ("ebmkit", "ebm"),
}

#: How each peer is driven, for the report (markdown).
HOW: dict[str, str] = {
    "torchebm": (
        "`torchebm.samplers.LangevinDynamics(model, step_size=eps, "
        "noise_scale=sigma / sqrt(2 * eps)).sample(x=x0, n_steps=n, generator=g)`, where "
        "`model` is a `torchebm.core.BaseModel` subclass whose `forward` calls the energy "
        "module (torchebm's Euler-Maruyama step adds `noise_scale * sqrt(2 * eps) * z`, so "
        "the noise is `sigma * z` as everywhere else)"
    ),
    "ebmkit": (
        "`ebm.samplers.LangevinDynamics(step_size=eps, noise_scale=sigma)"
        ".sample(f, x0, steps=n)` with the energy module `f` passed as is (ebmkit takes any "
        "callable `(N, D) -> (N,)`); noise from the global RNG"
    ),
}


def version(dist: str) -> str | None:
    """Installed version of distribution ``dist``, or ``None``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def make_torchebm(energy: nn.Module, eps: float, sigma: float) -> RunFn:
    """``torchebm.samplers.LangevinDynamics`` on ``energy``."""
    from torchebm.core import BaseModel
    from torchebm.samplers import LangevinDynamics

    class EnergyModel(BaseModel):
        """torchebm's model contract (``BaseModel``) around our energy module."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Tensor) -> Tensor:
            return self.net(x)

    p = next(itertools.chain(energy.parameters(), energy.buffers()))
    model = EnergyModel(energy).to(p.device)
    # torchebm's Euler-Maruyama step is x - eps*grad + noise_scale*sqrt(2*eps)*z.
    sampler = LangevinDynamics(
        model,
        step_size=eps,
        noise_scale=sigma / math.sqrt(2.0 * eps),
        dtype=p.dtype,
        device=p.device,
    )

    def run_fn(x0: Tensor, n_steps: int, generator: torch.Generator | None) -> Tensor:
        return sampler.sample(x=x0, n_steps=n_steps, generator=generator)

    return run_fn


def make_ebmkit(energy: nn.Module, eps: float, sigma: float) -> RunFn:
    """``ebm.samplers.LangevinDynamics`` (PyPI ``ebmkit``) on ``energy``."""
    from ebm.samplers import LangevinDynamics

    sampler = LangevinDynamics(step_size=eps, noise_scale=sigma, steps=1)

    def run_fn(x0: Tensor, n_steps: int, generator: torch.Generator | None) -> Tensor:
        del generator  # ebmkit draws from the global RNG (seeded by the harness)
        return sampler.sample(energy, x0, steps=n_steps)

    return run_fn


MAKERS: dict[str, Callable[[nn.Module, float, float], RunFn]] = {
    "torchebm": make_torchebm,
    "ebmkit": make_ebmkit,
}

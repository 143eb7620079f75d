"""Composition of energies: temperature and sums (products of experts)."""

from __future__ import annotations

__all__ = ["SumEnergy", "Tempered"]

from torch import Tensor, nn

from .base import Energy


class Tempered(Energy):
    """``E(x) / T``: the density ``p(x)^(1/T)`` up to normalization.

    ``T > 1`` flattens the distribution, ``T < 1`` sharpens it.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> import torch
        >>> hot = Tempered(Gaussian.standard(2), temperature=2.0)
        >>> float(hot(torch.ones(1, 2))[0])
        0.5
    """

    def __init__(self, energy: Energy, temperature: float) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(energy.event_shape)
        self.energy = energy
        self.temperature = float(temperature)

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``(N,)`` divided by the temperature."""
        return self.energy(x) / self.temperature

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class SumEnergy(Energy):
    """Product of experts: ``E(x) = sum_i E_i(x)``, i.e. ``p(x) ~ prod_i p_i(x)``.

    Example:
        >>> from ebmlab.energies import Gaussian
        >>> import torch
        >>> poe = SumEnergy(Gaussian.standard(2), Gaussian.standard(2))
        >>> float(poe(torch.ones(1, 2))[0])
        2.0
    """

    def __init__(self, *energies: Energy) -> None:
        if not energies:
            raise ValueError("SumEnergy needs at least one energy")
        shapes = {e.event_shape for e in energies}
        if len(shapes) != 1:
            raise ValueError(f"all experts must share one event_shape, got {sorted(shapes)}")
        super().__init__(energies[0].event_shape)
        self.experts = nn.ModuleList(energies)

    def forward(self, x: Tensor) -> Tensor:
        """Sum of the experts' energies, shape ``(N,)``."""
        total = self.experts[0](x)
        for expert in self.experts[1:]:
            total = total + expert(x)
        return total

"""One energy for every noise level: ``E_sigma(x) = f([x, log sigma]) / sigma``.

The energy behind denoising by Tweedie's formula and annealed sampling
(``EnergyDenoiser``): one network reads the noise level as an extra input.
Dividing by ``sigma`` keeps the denoising-score-matching residual
``sigma grad E - eps = grad f - eps`` of order one at every level. Trained by
:class:`~ebmlab.objectives.NoiseConditionalScoreMatching`.
"""

from __future__ import annotations

__all__ = ["NoiseConditionalEnergy"]

import torch
from torch import Tensor, nn


class NoiseConditionalEnergy(nn.Module):
    """``E_sigma(x) = f([x, log sigma]) / sigma`` on flat inputs.

    Unlike an :class:`~ebmlab.energies.Energy`, ``forward`` takes the noise
    level as a second argument.

    Arguments:
        net: Network ``(N, D + 1) -> (N, 1)``, e.g. :func:`~ebmlab.energies.make_mlp`.

    Example:
        >>> import torch
        >>> from ebmlab.energies import make_mlp
        >>> e = NoiseConditionalEnergy(make_mlp([3, 8, 1], "silu", torch.Generator()))
        >>> tuple(e(torch.randn(4, 2), torch.full((4,), 0.1)).shape)
        (4,)
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        """Energies ``(N,)`` of ``x`` ``(N, D)`` at levels ``sigma`` ``(N,)``."""
        h = torch.cat([x, sigma.log()[:, None]], 1)
        return self.net(h)[:, 0] / sigma  # type: ignore[no-any-return]

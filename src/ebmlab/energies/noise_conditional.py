"""One energy for every noise level: ``E_sigma(x) = f([x, log sigma]) / sigma``.

The energy behind denoising by Tweedie's formula and annealed sampling
(``EnergyDenoiser`` on flat rows, ``ebmlab denoise`` on image runs trained with
the ``ncsm`` objective): one network reads the noise level as an extra input
(:class:`NoiseConditionalEnergy` on flat rows; :class:`NoiseConditionalImageEnergy`
on images, where ``log sigma`` is one more constant input channel).
Dividing by ``sigma`` keeps the denoising-score-matching residual
``sigma grad E - eps = grad f - eps`` of order one at every level. Trained by
:class:`~ebmlab.objectives.NoiseConditionalScoreMatching`.
"""

from __future__ import annotations

__all__ = ["NoiseConditionalEnergy", "NoiseConditionalImageEnergy"]

import torch
from torch import Tensor, nn

from .base import Energy


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


class NoiseConditionalImageEnergy(Energy):
    """``E_sigma(x) = f([x, log sigma]) / sigma`` on images ``(N, C, H, W)``.

    ``f`` is an image energy on ``C + 1`` channels (for example a
    :class:`~ebmlab.energies.ConvEnergy`); the extra channel is the constant
    plane ``log sigma``. Dividing by ``sigma`` keeps the denoising-score-matching
    residual of order one at every level. Called with one argument it is an
    ordinary :class:`~ebmlab.energies.Energy`, the energy at the smallest
    trained level ``sigma_min`` (the data's energy, up to that smoothing), so
    samplers, ``score`` and ``detect`` work on it unchanged.

    With ``sigma_data = s`` the energy is instead a Gaussian reference
    ``N(0, s^2 I)`` smoothed to the level, plus a learned correction,

    .. math:: E_\\sigma(x) = \\frac{|x|^2}{2(\\sigma^2 + s^2)}
              - \\frac{s}{\\sigma\\sqrt{\\sigma^2 + s^2}} f([x, \\log\\sigma]),

    the preconditioning of Karras et al. (2022) written as an energy: Tweedie's
    estimate ``x - sigma^2 grad E`` is ``c_skip y + c_out grad f`` with
    ``c_skip = s^2 / (sigma^2 + s^2)``, so at large levels the network's
    gradient describes the clean image rather than the noise, which a
    downsampling network does far better.

    Arguments:
        net: Image energy on ``(N, C + 1, H, W)``.
        sigma_min: The level used when ``sigma`` is not given (``> 0``).
        sigma_max: The largest trained level (``> sigma_min``); kept for the
            annealed restorations that start there.
        sigma_data: Scale ``s`` of the Gaussian reference (``None``: none, the
            energy is ``f / sigma``).

    References:
        Karras, T., Aittala, M., Aila, T. & Laine, S. (2022). Elucidating the
        design space of diffusion-based generative models. NeurIPS.
        https://arxiv.org/abs/2206.00364

    Example:
        >>> import torch
        >>> from ebmlab.energies import ConvEnergy
        >>> e = NoiseConditionalImageEnergy(ConvEnergy((2, 8, 8), channels=(4,)), 0.01, 1.0)
        >>> e.event_shape
        (1, 8, 8)
        >>> tuple(e(torch.randn(3, 1, 8, 8), torch.full((3,), 0.5)).shape)
        (3,)
    """

    def __init__(
        self, net: Energy, sigma_min: float, sigma_max: float, sigma_data: float | None = None
    ) -> None:
        c, h, w = net.event_shape
        if c < 2:
            raise ValueError(f"net must read C + 1 >= 2 channels, got {net.event_shape}")
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        if sigma_data is not None and not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0 or None, got {sigma_data}")
        super().__init__((c - 1, h, w))
        self.sigma_data = None if sigma_data is None else float(sigma_data)
        self.net = net
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)

    def forward(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        """Energies ``(N,)`` of images ``x`` ``(N, C, H, W)`` at levels ``sigma`` ``(N,)``
        (default: ``sigma_min`` for every image)."""
        if sigma is None:
            sigma = torch.full((x.shape[0],), self.sigma_min, dtype=x.dtype, device=x.device)
        plane = sigma.log().to(x.dtype).reshape(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])
        f = self.net(torch.cat([x, plane], 1))
        if self.sigma_data is None:
            return f / sigma  # type: ignore[no-any-return]
        v = sigma**2 + self.sigma_data**2
        quad = 0.5 * x.reshape(x.shape[0], -1).pow(2).sum(1) / v
        return quad - self.sigma_data / (sigma * v.sqrt()) * f  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        return (
            f"event_shape={self.event_shape}, sigma_min={self.sigma_min:g}, "
            f"sigma_max={self.sigma_max:g}, sigma_data={self.sigma_data}"
        )

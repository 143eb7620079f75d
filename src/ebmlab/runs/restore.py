"""Restoring images with a noise-conditional energy (``ebmlab denoise`` on ``ncsm`` runs).

A run trained with the ``ncsm`` objective holds an energy ``E_sigma(x)`` of
the data smoothed by Gaussian noise of every level ``sigma`` in
``[sigma_min, sigma_max]`` (:class:`~ebmlab.energies.NoiseConditionalImageEnergy`).
Its gradient gives, by Tweedie's formula, the posterior mean of a clean image
given a noisy one: ``E[x | x + sigma eps = y] = y - sigma^2 grad E_sigma(y)``.
:func:`restore_images` uses it two ways:

* Gaussian noise of known ``noise_std`` (``method="tweedie"``): one Tweedie
  step at ``noise_std``, the minimum mean-squared-error estimate when the
  energy is exact (Efron 2011);
* missing pixels (``method="tweedie"`` or ``"langevin"``): annealed
  restoration over ``n_steps`` levels from ``sigma_max`` down to
  ``sigma_min`` (geometric). At each level the current estimate ``x0`` is
  noised to that level, ``x = x0 + sigma z``, its observed pixels are set to
  the observation noised the same way, and ``x0`` becomes the Tweedie estimate
  at ``x``, with the observed pixels put back exactly. ``"langevin"`` draws
  ``z`` at random (a sample of the posterior, as in annealed ancestral
  sampling, Song et al. 2021) and averages ``n_chains`` such chains (a Monte
  Carlo posterior mean, the estimate that minimizes the expected squared
  error); ``"tweedie"`` uses ``z = 0`` on the missing pixels (one
  deterministic chain: faster, a little blurrier).

Observed pixels are returned exactly; every restored pixel is clipped to the
data's range ``[-1, 1]``. Low energy = probable.

References:
    Efron, B. (2011). Tweedie's formula and selection bias. JASA 106(496).
    Song, Y. & Ermon, S. (2019). Generative modeling by estimating gradients
    of the data distribution. NeurIPS. https://arxiv.org/abs/1907.05600
    Song, Y. et al. (2021). Score-based generative modeling through stochastic
    differential equations. ICLR. https://arxiv.org/abs/2011.13456
"""

from __future__ import annotations

__all__ = ["restore_images", "tweedie"]

import torch
from torch import Tensor

from ..energies import NoiseConditionalImageEnergy


def tweedie(energy: NoiseConditionalImageEnergy, x: Tensor, sigma: float | Tensor) -> Tensor:
    """Tweedie's posterior mean ``x - sigma^2 grad E_sigma(x)`` of images ``(N, C, H, W)``.

    ``sigma`` is a number or one level per image ``(N,)``.
    """
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0]).contiguous()
    z = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(energy(z, s).sum(), z)
    return x - s.reshape(-1, 1, 1, 1) ** 2 * g


def restore_images(
    energy: NoiseConditionalImageEnergy,
    y: Tensor,
    observed: Tensor,
    *,
    noise_std: float | None,
    method: str = "tweedie",
    n_steps: int = 50,
    n_chains: int = 8,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Restore images with a noise-conditional energy (see the module docstring).

    Arguments:
        energy: The run's noise-conditional energy (parameters frozen).
        y: Corrupted images ``(N, C, H, W)`` in ``[-1, 1]``; missing pixels
            hold any finite value (the training mean, say).
        observed: Boolean ``(N, C, H, W)``, True where a pixel is observed.
        noise_std: Gaussian noise level of the observed pixels on ``[-1, 1]``
            (``None``: they are exact, only missing pixels are restored).
        method: ``"tweedie"`` or ``"langevin"`` (matters for missing pixels).
        n_steps: Levels of the annealed restoration of missing pixels.
        n_chains: Chains averaged by ``"langevin"``.
        generator: Random numbers of ``"langevin"``.

    Returns:
        Restored images ``(N, C, H, W)`` in ``[-1, 1]``.
    """
    x = y.clamp(-1.0, 1.0)
    if not bool(observed.all()):
        x = _inpaint(energy, x, observed, method, n_steps, n_chains, generator)
    if noise_std is not None:
        x = tweedie(energy, x, float(noise_std)).clamp(-1.0, 1.0)
    return x


def _inpaint(
    energy: NoiseConditionalImageEnergy,
    y: Tensor,
    observed: Tensor,
    method: str,
    n_steps: int,
    n_chains: int,
    generator: torch.Generator | None,
) -> Tensor:
    """Annealed restoration of the missing pixels; observed ones are kept exactly."""
    k = int(n_chains) if method == "langevin" else 1
    n = y.shape[0]
    yk = y.repeat_interleave(k, 0)
    obs = observed.repeat_interleave(k, 0)
    hi, lo = energy.sigma_max, energy.sigma_min
    steps = max(int(n_steps), 1)
    levels = [hi * (lo / hi) ** (i / max(steps - 1, 1)) for i in range(steps)]
    x0 = yk.clone()
    for sigma in levels:
        z = torch.randn(yk.shape, generator=generator, dtype=y.dtype, device=y.device)
        if method != "langevin":
            z = torch.where(obs, z, torch.zeros_like(z))  # deterministic on the missing pixels
        x = torch.where(obs, yk, x0) + sigma * z
        x0 = torch.where(obs, yk, tweedie(energy, x, sigma).clamp(-1.0, 1.0))
    return x0.reshape(n, k, *y.shape[1:]).mean(1)

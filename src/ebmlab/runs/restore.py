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

For large contiguous holes (half an image missing, say) the annealed chains
complete each image plausibly but not consistently with its observed part.
:func:`restore_from_exemplars` (``method="exemplar"``) is inference by
minimizing the energy over a candidate set: the candidates are **training
images** (the run's own training data), the ``n_candidates`` nearest to the
observation on its observed pixels; each one's missing pixels are pasted next
to the observed ones, optionally refined by a few annealed Tweedie steps at low
levels with the observed pixels clamped (MCMC-style moves), and weighted by
self-normalized importance weights

.. math:: \\log w_j = -\\frac{E_s(c_j) - E_s(x_j)}{T} - \\frac{d_j}{2\\tau^2},

where ``c_j`` is the composite, ``x_j`` the training image it came from,
``d_j`` the squared distance on the observed pixels, ``s`` the energy's level
and ``T`` a temperature. ``E_s(c_j) - E_s(x_j)`` is the energy cost of putting
``x_j``'s missing part next to the observed pixels instead of next to its
own; the distance term is a Gaussian kernel on the observed pixels (the
proposal of the candidates). The result is the weighted mean of the composites,
an importance-sampling estimate of the posterior mean (the estimate that
minimizes the expected squared error). ``temperature=None`` drops the energy
(the plain kernel average of the same candidates, for ablations).

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

__all__ = ["restore_from_exemplars", "restore_images", "tweedie"]

from collections.abc import Mapping
from typing import Any

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
    exemplars: Tensor | None = None,
    exemplar_options: Mapping[str, Any] | None = None,
) -> Tensor:
    """Restore images with a noise-conditional energy (see the module docstring).

    Arguments:
        energy: The run's noise-conditional energy (parameters frozen).
        y: Corrupted images ``(N, C, H, W)`` in ``[-1, 1]``; missing pixels
            hold any finite value (the training mean, say).
        observed: Boolean ``(N, C, H, W)``, True where a pixel is observed.
        noise_std: Gaussian noise level of the observed pixels on ``[-1, 1]``
            (``None``: they are exact, only missing pixels are restored).
        method: ``"tweedie"``, ``"langevin"`` or ``"exemplar"`` (matters for
            missing pixels; ``"exemplar"`` needs ``exemplars``).
        n_steps: Levels of the annealed restoration of missing pixels.
        n_chains: Chains averaged by ``"langevin"``.
        generator: Random numbers of ``"langevin"``.
        exemplars: Training images ``(M, C, H, W)`` for ``"exemplar"``.
        exemplar_options: Keyword arguments of :func:`restore_from_exemplars`.

    Returns:
        Restored images ``(N, C, H, W)`` in ``[-1, 1]``.
    """
    x = y.clamp(-1.0, 1.0)
    if not bool(observed.all()):
        if method == "exemplar":
            if exemplars is None:
                raise ValueError("method 'exemplar' needs exemplars (the training images)")
            opts = dict(exemplar_options or {})
            x = restore_from_exemplars(energy, x, observed, exemplars, generator=generator, **opts)
        else:
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
    x0 = _anneal(
        energy, yk.clone(), yk, obs, energy.sigma_max, energy.sigma_min, n_steps, generator,
        random_missing=method == "langevin",
    )  # fmt: skip
    return x0.reshape(n, k, *y.shape[1:]).mean(1)


def restore_from_exemplars(
    energy: NoiseConditionalImageEnergy,
    y: Tensor,
    observed: Tensor,
    exemplars: Tensor,
    *,
    n_candidates: int = 20,
    sigma: float = 0.3,
    temperature: float | None = 20.0,
    distance_scale: float = 3.0,
    refine_steps: int = 0,
    refine_sigma: float = 0.1,
    generator: torch.Generator | None = None,
    chunk: int = 256,
) -> Tensor:
    """Fill missing pixels from energy-weighted training exemplars (see the module docstring).

    Inference by minimizing the energy over a candidate set: importance
    sampling over completions taken from ``exemplars`` (the run's training
    images), with optional annealed Tweedie moves, then the weighted mean.

    Arguments:
        energy: The run's noise-conditional energy (parameters frozen).
        y: Images ``(N, C, H, W)`` in ``[-1, 1]``; missing pixels hold any
            finite value.
        observed: Boolean ``(N, C, H, W)``, True where a pixel is observed.
        exemplars: Candidate source ``(M, C, H, W)`` in ``[-1, 1]`` (the
            training images), ``M >= 1``.
        n_candidates: Exemplars per image, the nearest on the observed pixels
            (at most ``M``).
        sigma: Level ``s`` at which the energies are compared (``> 0``).
        temperature: ``T`` of the energy weights (``> 0``); ``None``: no
            energy, the kernel average of the candidates.
        distance_scale: ``tau`` of the kernel on observed pixels (``> 0``).
        refine_steps: Annealed Tweedie steps on each composite, from
            ``refine_sigma`` down to the energy's ``sigma_min``, observed pixels
            clamped (0: none).
        refine_sigma: First level of the refinement.
        generator: Random numbers of the refinement.
        chunk: Images handled at a time (memory ``chunk * M``).

    Returns:
        Restored images ``(N, C, H, W)`` in ``[-1, 1]``; observed pixels are
        those of ``y``.

    Raises:
        ValueError: For exemplars of another image shape or a bad setting.
    """
    if tuple(exemplars.shape[1:]) != tuple(y.shape[1:]) or exemplars.shape[0] < 1:
        raise ValueError(
            f"exemplars must be images of shape (M, {', '.join(map(str, y.shape[1:]))}), "
            f"got {tuple(exemplars.shape)}"
        )
    for name, v in (("sigma", sigma), ("distance_scale", distance_scale)):
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    if temperature is not None and not temperature > 0:
        raise ValueError(f"temperature must be > 0 or None, got {temperature}")
    if int(n_candidates) < 1:
        raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
    k = min(int(n_candidates), exemplars.shape[0])
    exemplars = exemplars.to(y.dtype)
    ex = exemplars.reshape(exemplars.shape[0], -1)
    ex_sq_t = ex.pow(2).T  # (D, M)
    e_ex: Tensor | None = None  # energies of the exemplars, computed once when needed
    out = []
    for i in range(0, y.shape[0], max(int(chunk), 1)):
        yc = y[i : i + chunk].clamp(-1.0, 1.0)
        oc = observed[i : i + chunk]
        n = yc.shape[0]
        o = oc.reshape(n, -1).to(y.dtype)
        yo = yc.reshape(n, -1) * o
        # squared distance on the observed pixels: |o y|^2 - 2 (o y) . x + o . x^2
        d = yo.pow(2).sum(1, keepdim=True) - 2.0 * yo @ ex.T + o @ ex_sq_t
        d, idx = d.clamp_min(0.0).topk(k, dim=1, largest=False)
        obs_k = oc.repeat_interleave(k, 0)
        y_k = yc.repeat_interleave(k, 0)
        comp = torch.where(obs_k, y_k, exemplars[idx.reshape(-1)])
        if refine_steps > 0:
            lo = min(energy.sigma_min, refine_sigma)
            comp = _anneal(energy, comp, y_k, obs_k, refine_sigma, lo, refine_steps, generator)
        log_w = -d / (2.0 * distance_scale**2)
        if temperature is not None:
            if e_ex is None:
                e_ex = _energies(energy, exemplars, sigma, chunk)
            e_c = _energies(energy, comp, sigma, chunk).reshape(n, k)
            log_w = log_w - (e_c - e_ex[idx]) / temperature
        w = torch.softmax(log_w, 1)
        x = (w.reshape(n, k, 1) * comp.reshape(n, k, -1)).sum(1).reshape(yc.shape)
        out.append(torch.where(oc, yc, x.clamp(-1.0, 1.0)))
    return torch.cat(out)


def _energies(energy: NoiseConditionalImageEnergy, x: Tensor, sigma: float, chunk: int) -> Tensor:
    """``E_sigma`` of images ``(N, C, H, W)`` -> ``(N,)``, in chunks, without gradients."""
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], 16 * chunk):
            xi = x[i : i + 16 * chunk]
            out.append(
                energy(xi, torch.full((xi.shape[0],), sigma, dtype=x.dtype, device=x.device))
            )
    return torch.cat(out)


def _anneal(
    energy: NoiseConditionalImageEnergy,
    x0: Tensor,
    y: Tensor,
    observed: Tensor,
    hi: float,
    lo: float,
    n_steps: int,
    generator: torch.Generator | None,
    *,
    random_missing: bool = True,
) -> Tensor:
    """Annealed Tweedie steps over ``n_steps`` geometric levels from ``hi`` down to ``lo``:
    at each level ``x0`` (observed pixels set to ``y``) is noised to the level and replaced
    by its Tweedie estimate, observed pixels put back. ``random_missing=False`` leaves the
    missing pixels un-noised (one deterministic chain)."""
    steps = max(int(n_steps), 1)
    for i in range(steps):
        level = hi * (lo / hi) ** (i / max(steps - 1, 1))
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        if not random_missing:
            z = torch.where(observed, z, torch.zeros_like(z))
        x = torch.where(observed, y, x0) + level * z
        x0 = torch.where(observed, y, tweedie(energy, x, level).clamp(-1.0, 1.0))
    return x0
